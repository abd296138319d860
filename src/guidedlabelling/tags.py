"""Your own data's tags: a CSV `image,tags[,split]`, and the split of images it does not assign."""
import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, raise_all
from .io import text_lines

SPLITS = ("train", "val")
NOT_IN_TAGS = re.compile("[,\"'|\u2018-\u201f\u00ab\u00bb\u2039\u203a\uff0c\uff1b\u3001]")  # what a CSV field
# can hold but a class name may not ('|': a separator of other tools, `cat|dog` one class otherwise; the quotes a
# word processor types, “cat dog” two classes “cat and dog”; the commas and semicolon of Chinese and Japanese text)
INVISIBLE = "\u00ad\u200b\u200e\u200f\u2060\ufeff"  # soft hyphen, zero-width space, direction marks, word joiner,
# BOM: nothing in a name (the joiners U+200C/D are letters of some scripts and of emoji sequences)


@dataclass(frozen=True)
class TagRow:
    line: int
    image: str
    tags: tuple
    split: str | None


HEADERS = (["image", "tags"], ["image", "tags", "split"])   # the header lines a tags CSV may have


def read_tags(path):
    """Rows of a tags CSV: header `image,tags` (optionally `,split`), tags separated by spaces, ';' or ','."""
    rows, problems = read_rows(path)
    raise_all(problems, str(path))
    return rows


def read_rows(path):
    """(the rows of a tags CSV that read well, the problems of the others and of tags that clash): a file that is
    no tags CSV, or holds no row, is an error at once."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: tags file not found; pass --tags with a CSV whose header is image,tags")
    lines = text_lines(path, "save the tags as 'CSV UTF-8' (Excel), or re-encode the file as UTF-8")
    reader = csv.reader(lines, skipinitialspace=True)  # a, "cat dog" as a,"cat dog"
    header = read_header(reader, lines, path)
    rows, problems = [], []
    try:
        for line, fields in rows_of(reader, path, problems):
            if any(f.strip() for f in fields):
                try:
                    rows.append(tag_row(fields, header, path, line))
                except InputError as e:
                    problems += e.messages
    except csv.Error as e:  # a quote left open before more than csv's field limit of text
        problems.append(f"{path}, line {reader.line_num}: {e}; close the quote left open above it")
    if not rows:
        raise_all(problems or [f"{path}: no image rows below the header"], str(path))
    return rows, problems + case_clashes(rows, path)


def read_header(reader, lines, path):
    """The column names of a tags CSV's first line (lower case, empty ones after the last dropped), which must be
    image,tags or image,tags,split."""
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as e:  # a quote left open in the header, before more than csv's field limit of text
        raise InputError(f"{path}, line 1: {e}; close the quote left open in the header (image,tags)") from None
    while header and not header[-1]:  # empty columns after the last (spreadsheets write them)
        header.pop()
    if header not in HEADERS:
        named = ','.join(header) or ('(no column names)' if any(line.strip() for line in lines) else '(empty file)')
        other = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs")) if len(header) == 1 and
                      header[0].replace(" ", "").split(sep) in HEADERS), None)
        fix = f"its fields are separated by {other}: save it with commas (CSV)" if other else \
            "the first line must name these columns"
        raise InputError(f"{path}: header {named} is not image,tags (or image,tags,split); {fix}")
    return header


def rows_of(reader, path, problems):
    """(line, fields) of the CSV's rows; a row that runs on over several lines (a quoted cell with a line break,
    or a quote left open) is a problem instead."""
    first = reader.line_num + 1
    for fields in reader:
        line, first = first, reader.line_num + 1
        if line < reader.line_num:
            problems.append(f"{path}, line {line}: a quoted field runs on to line {reader.line_num}; write each row "
                            "on one line (a cell with a line break, or a quote left open)")
        else:
            yield line, fields


def tag_row(fields, header, path, line):
    """One row of the CSV; a row that leaves out an empty split field (image,tags under image,tags,split) has none."""
    if not any(f.strip() for f in fields[len(header):]):
        fields = fields[:len(header)]
    if len(fields) == 2 == len(header) - 1:
        fields = fields + [""]
    if len(fields) != len(header):
        got = repr(fields) if len(repr(fields)) <= 80 else repr(fields)[:77] + "..."
        fix = "separate tags by spaces or ';', or quote them (\"cat, dog\")" if len(fields) > len(header) else \
            "write the image's tags after a comma (a lone comma: no tags)"
        raise InputError(f"{path}, line {line}: expected {len(header)} fields ({','.join(header)}), got {got}; {fix}")
    if not fields[0].strip():
        raise InputError(f"{path}, line {line}: no image named; write the image's file name in the first field")
    tags = tuple(sorted({t for t in re.split(r"[;,\s]+", fields[1]) if t}))   # "cat, dog": a quoted cell
    check_tags(tags, path, line)
    return TagRow(line, fields[0].strip(), tags, read_split(fields, header, path, line))


def check_tags(tags, path, line):
    """Errors for a row's tags that cannot be class names: background (class 0), one holding a quote or '|' (tags
    run together), one holding an invisible character (two tags that print alike would be two classes)."""
    reserved = next((t for t in tags if t.casefold() == "background"), None)
    if reserved:
        raise InputError(f"{path}, line {line}: {reserved!r} is not a tag (background is class 0); remove it")
    odd = next((t for t in tags if NOT_IN_TAGS.search(t)), None)
    if odd:
        raise InputError(f"{path}, line {line}: tag {odd!r} holds {NOT_IN_TAGS.search(odd).group()!r}; separate "
                         "tags by spaces, ';' or ',', and write class names without quotes or '|'")
    unseen = next(((t, c) for t in tags for c in t if unicodedata.category(c) == "Cc" or c in INVISIBLE), None)
    if unseen:
        raise InputError(f"{path}, line {line}: tag {unseen[0]!r} holds the invisible character "
                         f"U+{ord(unseen[1]):04X}; remove it")


def case_clashes(rows, path):
    """A problem per spelling of a tag that differs from an earlier one only in case, or in how an accent is written
    (é as one character or as e and a combining accent: they print alike), at its first row. Tags are
    case-sensitive class names, so such a pair is an error, not two classes (each would shift the mask values of
    the classes after it)."""
    first, clashes = {}, {}
    for row in rows:
        for tag in row.tags:
            seen = first.setdefault(unicodedata.normalize("NFC", tag).casefold(), (tag, row.line))
            if seen[0] != tag and tag not in clashes:
                how = "in how an accent is written (composed or not)" if \
                    unicodedata.normalize("NFC", tag) == unicodedata.normalize("NFC", seen[0]) else "in case"
                clashes[tag] = (f"{path}, line {row.line}: tag {tag!r} differs only {how} from {seen[0]!r} (line "
                                f"{seen[1]}); write one class name alike everywhere")
    return list(clashes.values())


def read_split(fields, header, path, line):
    """The split column's value (train or val, any case), '' where the column has none, None without the column."""
    if len(header) < 3:
        return None
    if not fields[2].strip():
        return ""
    split = fields[2].strip().lower()
    if split not in SPLITS:
        raise InputError(f"{path}, line {line}: split {fields[2].strip()!r} is not train or val; write train or val, "
                         "or leave it empty for the split by name (val_percent)")
    return split


def tag_names(rows):
    """The sorted tag names of the rows: own data's classes after background."""
    return sorted({t for r in rows for t in r.tags})


def split_of(row, image_id, val_percent):
    """The split of a row whose image has this id: its split column's, else hash_split's."""
    return row.split or hash_split(image_id, val_percent)


def hash_split(image_id, val_percent):
    """'val' for about val_percent of the ids, the same on every machine: sha1 of the id, mod 100."""
    return "val" if int(hashlib.sha1(image_id.encode()).hexdigest(), 16) % 100 < val_percent else "train"
