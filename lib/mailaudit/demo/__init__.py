"""Demo Bitrix database, logs and truth file: the fixture every report, test and benchmark runs on.

``build_demo(sqlite_path=… | url=…, contacts=…, seed=…, logs_dir=…, world=…)`` writes them; see
``mailaudit.demo.build`` for the options, ``mailaudit.demo.worlds`` for the behaviour profiles,
``mailaudit.demo.nulls`` for the optional realistic NULLs and ``mailaudit.demo.truth.RULES`` for the
exact definitions behind every figure of the truth file.
"""

from mailaudit.demo.build import DemoResult, build_demo

__all__ = ["DemoResult", "build_demo"]
