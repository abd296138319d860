"""Errors a user can fix, each told in one line that names the file or setting and the fix."""
import argparse
import errno
import os
import re
import sys
from pathlib import Path


class InputError(Exception):
    """Bad input the user can fix; one message per problem, each naming the file or setting and the fix."""

    def __init__(self, *messages):
        super().__init__(*messages)
        self.messages = messages

    def __str__(self):
        return "\n".join(self.messages)


OVERRIDDEN = set()  # folders this process cleared for --overridecache; LANES: its lanes' processes may have
LANES = "lanes"


def resume_hint(to="resume"):
    """How to resume a command stopped midway (or do what it had left `to` do): the same command, less
    --overridecache once that has cleared a folder (rerun with it, the command would clear it again); lanes say
    for themselves whether theirs did."""
    if OVERRIDDEN - {LANES}:
        return f"rerun the same command without --overridecache to {to}"
    if OVERRIDDEN:
        return f"rerun the same command to {to}, without --overridecache where a lane's line above says so"
    return f"rerun the same command to {to}"


def listed(words, last="and"):
    """'a', 'a and b', 'a, b and c' (or with `last` 'or')."""
    words = list(words)
    return f" {last} ".join(filter(None, [", ".join(words[:-1]), words[-1]]))


def some(names, shown=3):
    """'a, b, c, ...': the first `shown` names, and an ellipsis where there are more."""
    return ", ".join(list(names)[:shown]) + (", ..." if len(names) > shown else "")


def counted(n, noun):
    """'1 image', '3 images'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def image_lines(reasons, shown=None, rest_in=""):
    """'  <image>: <why>' lines of {image: why}; past `shown` of them, one line counting the rest (in `rest_in`)."""
    lines = [f"  {path}: {why}" for path, why in list(reasons.items())[:shown]]
    rest = len(reasons) - len(lines)
    return "\n".join(lines + ([f"  ... and {rest} more ({rest_in})"] if rest else []))


def capped(problems, source, shown=10):
    """The problems found; past `shown` of them, one line counting the rest."""
    more = [f"{source}: {len(problems) - shown} more problems"] if len(problems) > shown else []
    return problems[:shown] + more


def raise_all(problems, source):
    """Raise every problem found together (capped), or nothing when there is none."""
    if problems:
        raise InputError(*capped(problems, source))


OS_FIXES = {
    errno.ENOSPC: "free space on that disk or choose another output folder ({flags})",
    errno.EDQUOT: "free space within your quota or choose another output folder ({flags})",
    errno.EFBIG: "the file system, or the shell's file size limit (ulimit -f), refuses files this large; raise the "
                 "limit or choose another output folder ({flags})",
    errno.EROFS: "the file system is read-only; choose another output folder ({flags})",
    errno.EACCES: "give this user access to it, or choose another output folder ({flags})",
    errno.EPERM: "give this user access to it, or choose another output folder ({flags})",
    errno.ENOTDIR: "a file stands where a folder is needed; move it away or choose another output folder ({flags})",
    errno.EEXIST: "a file stands where a folder is needed; move it away or choose another output folder ({flags})",
    errno.ELOOP: "a link on this path leads back to itself; point it at a real file or folder",
}


def os_error_message(e, flags="--out_root, --out_dir"):
    """One line for a file the system would not read or write: the file (for a file where a folder is needed,
    that file), the system's reason, the fix naming the command's output folder flags."""
    fix = OS_FIXES.get(e.errno, "check the file and its disk, then rerun the same command").format(flags=flags)
    path = e.filename
    if path and e.errno in (errno.ENOTDIR, errno.EEXIST):
        dangling = next((p for p in (Path(path), *Path(path).parents) if p.is_symlink() and not p.exists()), None)
        if dangling:   # (mkdir meets the link itself: 'File exists', said as a file standing there)
            return f"{dangling}: a link to {os.readlink(dangling)}, which is not there; create that folder, or point " \
                f"the link at one, or choose another output folder ({flags})"
        path = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), path)
    where = f"{path}: " if path else ""
    return f"{where}{e.strerror or type(e).__name__}; {fix}"


class Once(argparse._StoreAction):
    """A flag of one value given twice is an error: argparse keeps the last without a word (`--steps seg_train
    --steps segmentations` ran segmentations alone)."""
    given = None

    def __call__(self, parser, namespace, values, option_string=None):
        if self.given is not None:
            parser.error(f"argument {'/'.join(self.option_strings)}: given twice ({self.given}, then {values}); give "
                         "it once")
        self.given = values
        super().__call__(parser, namespace, values, option_string)


def given_empty(args, flags):
    """The flags of `flags` that parsed `args` holds as blank text (an unset shell variable: --out_dir "$OUT")."""
    return [flag for flag in flags if isinstance(getattr(args, flag, None), str) and not getattr(args, flag).strip()]


def dash_value_after(flag, args):
    """Whether `flag` is followed in `args` by a word that begins with '-'."""
    return any(word == flag and following.startswith("-") for word, following in zip(args, args[1:]))


class Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, as every other error of the commands (argparse prints its
    usage first, a screen of it for a stage command); flags of one value are given once (Once); a flag is taken only
    whole (argparse's abbreviations read ./src/seed/test.py --seed 1, a setting of the trainings, as --seed_split)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs, allow_abbrev=False)
        for name in (None, "store"):   # the registry its argument groups share
            self.register("action", name, Once)

    def parse_known_args(self, args=None, namespace=None):
        for action in self._actions:
            if isinstance(action, Once):
                action.given = None   # (a parser may parse again)
        self.given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message):
        flag = re.fullmatch(r"argument (\S+?)(?:/\S+)?: expected one argument", message)
        if flag and dash_value_after(flag.group(1), self.given):   # argparse reads it (a folder -x) as a flag
            message += f" (a value that begins with '-' is written {flag.group(1)}=VALUE)"
        self.exit(2, f"error: {message}; see {self.prog} -h\n")
