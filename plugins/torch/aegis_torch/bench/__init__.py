"""The backdoor benchmark: a population of seeded, carded MNIST classifiers built from a YAML spec.

Modules: ``spec`` (the YAML spec, checked), ``families`` (the trigger families: random parameters per model,
test-time application, poisoning), ``make`` (one model: data, poison, train, evaluate, export, card; and the
whole population, resumable), ``table`` (the results table of all cards), ``commands`` (``bench make``,
``bench verify``, ``bench table``).
"""
