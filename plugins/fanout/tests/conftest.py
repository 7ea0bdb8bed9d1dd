from aegis_runner.testing import aegis_bin, broken_model, mnist, reduced_args, root, zoo  # noqa: F401
