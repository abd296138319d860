"""Ranges and choices of settings, declared beside them (CHECKS in each stage module, config.SHARED_CHECKS):
a check takes a setting's value, already of the setting's type, and returns None when it is fine, else what
is wrong with it and what to write instead."""
import argparse
import re


def at_least(low):
    def check(value):
        return None if value >= low else f"must be at least {low}"
    return check


def above(low):
    def check(value):
        return None if value > low else f"must be above {low}"
    return check


def between(low, high):
    def check(value):
        return None if low <= value <= high else f"must be within {low}..{high}"
    return check


def at_most(high):
    def check(value):
        return None if value <= high else f"must be at most {high}"
    return check


def below(high):
    def check(value):
        return None if value < high else f"must be below {high}"
    return check


def one_of(*choices):
    def check(value):
        return None if value in choices else f"choose one of {', '.join(map(str, choices))}"
    return check


def filled(what):
    """A setting that an empty value would silently change the meaning of (an unset shell variable, say)."""
    def check(value):
        return None if str(value).strip() else f"is empty; write {what}"
    return check


POSITIVE = at_least(1)
NON_NEGATIVE = at_least(0)
PERCENT = between(0, 100)
MIN_SIDE = 16  # px of the smallest image side a network is given: at output stride 8, 2x2 scores (a mistyped
# side of 3 gave maps of one value, without a word)
MAX_SIDE = 8192  # px of the largest side a network is given or data is generated at (a mistyped 100000 was killed
# for memory without a word)
MAX_LR = 1000  # a base_lr above it is a slip (1e39 overflowed float32 in a traceback)
MAX_BUILTIN = 100_000  # images of a built-in split (1e8 generated for minutes without a word)


def side_or_zero(value):
    """A side in px, or 0 for none (never shrink; another setting's side)."""
    return None if value == 0 or value >= MIN_SIDE else f"must be 0 or at least {MIN_SIDE}"


DEVICE_SYNTAX = re.compile(r"auto|cpu|cuda(:\d+)?")


def device(value):
    return None if DEVICE_SYNTAX.fullmatch(value) else "write cpu, cuda, cuda:N (a GPU index) or auto"


def all_of(*checks):
    def check(value):
        return next((problem for c in checks if (problem := c(value))), None)
    return check


SIDE = all_of(at_least(MIN_SIDE), at_most(MAX_SIDE))


def argument(kind, check):
    """An argparse type for a command's own flag: the text as `kind`, refused with the check's problem."""
    def parse(text):
        value = kind(text)
        problem = check(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in 'invalid int value'
    return parse
