"""Moved to :mod:`krfeed.program` (program trading is not about orders); this name stays for
code that imports it."""

from krfeed.program import ProgramFlow, ProgramTotals, ProgramTrading, normalize_program

__all__ = ["ProgramFlow", "ProgramTotals", "ProgramTrading", "normalize_program"]
