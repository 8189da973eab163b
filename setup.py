"""pyproject.toml holds the metadata; this file adds the one compiled module it cannot declare.

`event_platform.ingest._shape` is the parser's fast path in C. It is optional: where no C
compiler is at hand the build goes on without it, and the parser uses its regex instead (the
same verdicts, more CPU).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "event_platform.ingest._shape",
            ["event_platform/ingest/_shape.c"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        )
    ]
)
