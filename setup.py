"""The optional C extension of the labeling path (training/_native.c). Everything else is in pyproject.toml.

`optional=True`: where it cannot be compiled (no compiler, no Python headers) the install goes on and
qism runs its pure-Python path, which gives the same features to the last bit.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("qism._native", ["training/_native.c"], optional=True, extra_compile_args=["-O2"])])
