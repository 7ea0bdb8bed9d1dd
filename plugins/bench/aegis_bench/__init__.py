"""The backdoor benchmark of aegis-audit: a population of seeded, carded image classifiers built from a YAML
spec (``bench/spec.yaml``), and the evaluation of the detectors on it. Models, training and ONNX export come
from ``aegis_torch``.

Modules: ``spec`` (the YAML spec, checked), ``families`` (the trigger families: random parameters per model,
test-time application, poisoning), ``domains`` (the data domains derived from MNIST), ``make`` (one model: data,
poison, train, evaluate, export, card; and the whole population, resumable), ``table`` (the results table of all
cards), ``evaluate`` (every detector on every model, calibrated on one half, scored on the other), ``plan_v2``
(the design of the v2 model list), ``cli`` and ``commands`` (``python -m aegis_bench make``, ``verify``,
``table``, ``domains``, ``evaluate``).
"""
