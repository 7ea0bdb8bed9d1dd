"""aegis_torch: model zoo, trigger poisoning, robust training and ONNX export for aegis-audit.

Modules: ``data`` (dataset readers), ``triggers`` (trigger specs), ``poison`` (training-set poisoning),
``models`` (architectures), ``attack`` (L2 PGD), ``train`` (training loops), ``evaluate`` (metrics),
``export`` (ONNX export + parity), ``card`` (model cards), ``gradcheck`` (gradient fixtures),
``subset`` (IDX subset writer), ``bench`` (the backdoor benchmark population), ``cli`` (command line).
"""

__version__ = "0.1.0"
