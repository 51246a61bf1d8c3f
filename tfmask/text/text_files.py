"""Plain-Python checks of the text files a run reads, and atomic writes of the files it keeps.

Pretraining reads its corpus inside `tf.data` (`TextLineDataset`), where a bad byte or an
absurd line would surface as a TensorFlow error about the pipeline, or not at all. So before
anything is written, `scan_corpus` streams every file once (16 MiB at a time, never a whole
file in memory) and stops at the first line that cannot work, with `path:line:`:

    what                                   message (or, with `--skip-bad-lines`, skipped and
                                           counted in the log)
    bytes that are not UTF-8               corpus.txt:12: not UTF-8 (byte 0xe9 at byte offset
                                           4711 of the file, column 6 of the line) ...
    a line over `MAX_LINE_BYTES` (1 MiB)   corpus.txt:3: a line of 5,000,000 bytes ...
    no text at all (empty files, blank     --corpus 'data/*.txt': no text in its 2 files ...
    lines, control characters only)

`read_lines` reads a file of one text a line (`tfmask predict --file`) with the same UTF-8
errors. `atomic_write` / `atomic_path` write a file under a temporary name, flush it to disk
and rename it into place, so a kill or a full disk never leaves half a file under the real
name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import time
import unicodedata
from typing import Iterator, Sequence

from tfmask.text.readers import ReaderError

#: The longest corpus line (bytes) read as text: a longer one is a file that is not one
#: sentence or paragraph a line (a minified page, a binary blob).
MAX_LINE_BYTES = 1 << 20
_CHUNK = 16 << 20
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# A character that BERT's basic tokenizer keeps (not whitespace, control or format, not
# U+FFFD): a line with one gives at least one word piece.
_NOT_TEXT = {"Cc", "Cf", "Zs", "Zl", "Zp"}


def not_utf8(path: str, data: bytes, start: int, line: int, offset: int,
             advice: str = "save it as UTF-8") -> ReaderError:
    """The error for a byte that is not UTF-8: `data[start]` is the bad byte, on `line` of
    the file, `offset` bytes into the file; `data` holds at least that line."""
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    if offset in (0, 1) and data[:2] in _UTF16_BOMS and line == 1:
        advice = ("it is UTF-16 (it starts with a UTF-16 byte-order mark): convert it, e.g. "
                  "iconv -f UTF-16 -t UTF-8")
    return ReaderError(path, line, f"not UTF-8 (byte 0x{data[start]:02x} at byte offset "
                                   f"{offset} of the file, column {column} of the line); "
                                   f"{advice}")


def has_text(line: str) -> bool:
    """Whether `line` holds a character the tokenizer keeps (so it gives a word piece)."""
    return any(unicodedata.category(c) not in _NOT_TEXT and c != "\ufffd" for c in line)


@dataclasses.dataclass
class CorpusReport:
    """What `scan_corpus` found: counts over all files, and the first skipped line of each
    kind (`path:line`)."""

    files: int = 0
    lines: int = 0
    bytes: int = 0
    text_files: int = 0  # files with at least one line of text
    skipped_not_utf8: int = 0
    skipped_long: int = 0
    first_not_utf8: str = ""
    first_long: str = ""

    def skipped_summary(self, flag: str) -> str:
        """One line for the log about the lines `--skip-bad-lines` skipped ('' if none)."""
        parts = []
        if self.skipped_not_utf8:
            parts.append(f"{self.skipped_not_utf8:,} not UTF-8 (first: {self.first_not_utf8})")
        if self.skipped_long:
            parts.append(f"{self.skipped_long:,} over {MAX_LINE_BYTES:,} bytes (first: "
                         f"{self.first_long})")
        if not parts:
            return ""
        return (f"{flag}: skipped {' and '.join(parts)} of {self.lines:,} lines "
                "(--skip-bad-lines)")


def _lines_with_offsets(data: bytes) -> Iterator[tuple[int, bytes]]:
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield start, data[start:end]
        start = end


def _long_line(path: str, number: int, length: int, report: CorpusReport, skip: bool) -> None:
    if not skip:
        raise ReaderError(path, number, f"a line of {length:,} bytes (over {MAX_LINE_BYTES:,}): "
                          "one sentence or paragraph a line is expected; split the text into "
                          "lines, or pass --skip-bad-lines to skip such lines")
    report.skipped_long += 1
    report.first_long = report.first_long or f"{path}:{number}"


def _scan_file(path: str, report: CorpusReport, skip: bool, advice: str) -> None:
    """Adds one file to `report`; raises `ReaderError` at its first bad line unless `skip`."""
    line, offset, found = 1, 0, False  # line number and file offset where `rest` starts
    rest = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_CHUNK)
            data = rest + block
            if not block:  # the end of the file: what is left is its last line
                if data:
                    found = _scan_lines(path, data, line, offset, report, skip, advice, found)
                    offset += len(data)
                break
            cut = data.rfind(b"\n") + 1
            if not cut and len(data) > MAX_LINE_BYTES:
                # An absurd line whose end is not in sight: judged now, then read past (never
                # held in memory whole).
                skipped, ended = _skip_line(fh)
                _long_line(path, line, len(data) + skipped - ended, report, skip)
                report.lines += 1
                line, offset, rest = line + ended, offset + len(data) + skipped, b""
                continue
            whole, rest = data[:cut], data[cut:]
            found = _scan_lines(path, whole, line, offset, report, skip, advice, found)
            line, offset = line + whole.count(b"\n"), offset + len(whole)
    report.files += 1
    report.bytes += offset
    report.text_files += found


def _skip_line(fh) -> tuple[int, int]:
    """Reads past the rest of the current line: (bytes read, 1 if it ended with a newline)."""
    skipped = 0
    while True:
        block = fh.read(1 << 20)
        if not block:
            return skipped, 0
        end = block.find(b"\n")
        if end >= 0:
            fh.seek(end + 1 - len(block), os.SEEK_CUR)
            return skipped + end + 1, 1
        skipped += len(block)


def _has_long_line(data: bytes) -> bool:
    """Whether a line of `data` (without its newline) is over `MAX_LINE_BYTES`, found by
    jumping from the last newline of one `MAX_LINE_BYTES` window to the next."""
    position = -1  # the newline before the current line
    while len(data) - position - 1 > MAX_LINE_BYTES:
        window_end = position + MAX_LINE_BYTES + 2
        last = data.rfind(b"\n", position + 1, window_end)
        if last < 0:
            return True
        position = last
    return False


def _scan_lines(path: str, data: bytes, line: int, offset: int, report: CorpusReport,
                skip: bool, advice: str, found: bool) -> bool:
    """Checks the whole lines `data`, which start at `line`, `offset` bytes into the file;
    returns whether a line of text has been found in the file so far."""
    report.lines += data.count(b"\n") + (not data.endswith(b"\n"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not _has_long_line(data):
        return found or any(has_text(t) for t in text.split("\n") if t.strip())
    # Something is wrong in this block: find the lines, in order.
    for start, raw in _lines_with_offsets(data):
        number = line + data.count(b"\n", 0, start)
        if len(raw.rstrip(b"\n")) > MAX_LINE_BYTES:
            _long_line(path, number, len(raw.rstrip(b"\n")), report, skip)
            continue
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if not skip:
                raise not_utf8(path, data, start + e.start, number, offset + start + e.start,
                               advice) from None
            report.skipped_not_utf8 += 1
            report.first_not_utf8 = report.first_not_utf8 or f"{path}:{number}"
            continue
        found = found or has_text(decoded)
    return found


def scan_corpus(files: Sequence[str], flag: str = "--corpus", skip_bad_lines: bool = False,
                patterns: Sequence[str] | None = None) -> CorpusReport:
    """Checks pretraining text files line by line (see the module docstring).

    Args:
      files: the files, as the glob patterns expanded.
      flag: the option that named them, for messages.
      skip_bad_lines: count lines that are not UTF-8 or longer than `MAX_LINE_BYTES`
        instead of stopping at the first (the pipeline then filters the same lines out).
      patterns: the patterns as given, for the message when no file holds text.

    Returns:
      A `CorpusReport`.

    Raises:
      ReaderError: `path:line:` at the first bad line (without `skip_bad_lines`), or
        `flag ...:` when no file holds a line of text.
    """
    report = CorpusReport()
    advice = "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass --skip-bad-lines to " \
             "skip such lines"
    for path in files:
        _scan_file(path, report, skip_bad_lines, advice)
    if files and not report.text_files:
        where = " ".join(repr(p) for p in (patterns or files))
        raise ReaderError(f"{flag} {where}", None,
                          f"no text in its {report.files} file{'s' * (report.files != 1)} "
                          f"({report.lines:,} line{'s' * (report.lines != 1)}, {report.bytes:,} bytes: empty, blank or "
                          "control characters only"
                          + (", or skipped" if report.skipped_not_utf8 + report.skipped_long
                             else "") + "); give files with one sentence or paragraph a line")
    return report


#: Reports of unchanged files already scanned in this process (the CLI checks the corpus
#: before TensorFlow loads, then `pretrain` does again).
_SCANNED: dict[tuple, CorpusReport] = {}


def corpus_files(patterns: Sequence[str]) -> list[str]:
    """The files a list of glob patterns names, in order, each once (as
    `pretraining_data.expand_globs`, without TensorFlow)."""
    files = []
    for pattern in patterns:
        found = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        files.extend(f for f in found if os.path.isfile(f))
    return list(dict.fromkeys(files))


def check_corpus(data) -> None:
    """Scans a `DataConfig`'s `corpus` and `eval_corpus` files (`scan_corpus`, with its
    `skip_bad_lines`), printing what was skipped and, when it took a while, what was read.
    Unchanged files scanned before in this process are not read again."""
    for flag, patterns in (("--corpus", data.corpus), ("--eval-corpus", data.eval_corpus)):
        files = corpus_files(patterns)
        if not files:
            continue
        key = (flag, data.skip_bad_lines, tuple(patterns),
               tuple((f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files))
        if key in _SCANNED:
            continue
        start = time.perf_counter()
        report = scan_corpus(files, flag, data.skip_bad_lines, patterns)
        seconds = time.perf_counter() - start
        if seconds > 5:
            print(f"{flag}: checked {report.lines:,} lines in {report.files:,} files "
                  f"({report.bytes / 1e6:,.0f} MB) in {seconds:.0f} s", flush=True)
        if report.skipped_summary(flag):
            print(report.skipped_summary(flag), flush=True)
        _SCANNED[key] = report


def vocabulary_problem(path: str) -> str | None:
    """What makes `path` unusable as a BERT `vocab.txt` (None: nothing), e.g.
    `vocab.txt:6: not UTF-8 ...` or a missing special token, without TensorFlow."""
    try:
        tokens = set(read_lines(path))
    except ReaderError as e:
        return str(e)
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in tokens]
    if missing:
        return (f"{path}: not a BERT vocabulary (one token a line; it lacks the special "
                f"tokens {missing})")
    return None


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file (one text a line; `\\r\\n` and a BOM are fine), without
    their line ends; a byte that is not UTF-8 raises `ReaderError` naming line and offset."""
    with open(path, "rb") as fh:
        data = fh.read()
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        start = bom + e.start
        raise not_utf8(path, data, start, data.count(b"\n", 0, start) + 1, start) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [t[:-1] if t.endswith("\r") else t for t in lines]


# ----------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------
def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be synced
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a temporary path beside `path` (same folder, so the rename is atomic; hidden,
    with `path`'s ending, which Keras checks) for a writer to fill; then flushes it to disk
    and renames it to `path`. On any error, or a kill, `path` keeps its previous content and
    the temporary file is removed (a kill can leave a `.tmp-*` file, never half a `path`)."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, ".tmp-" + os.path.basename(path))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def atomic_write(path: str, content: str | bytes) -> None:
    """Writes `content` (text as UTF-8) to `path` through `atomic_path`."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
