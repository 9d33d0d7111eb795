"""The nine job titles of the tutorial's similarity heatmap.

Three domains of three titles each (data, nursing, marketing): a well
domain-adapted encoder shows three bright 3x3 blocks on the diagonal.
"""

from __future__ import annotations

TUTORIAL_TITLES: tuple[str, ...] = (
    "Data Scientist",
    "Data Analyst",
    "Data Engineer",
    "Nurse Practitioner",
    "Registered Nurse",
    "Medical Assistant",
    "Social Media Manager",
    "Marketing Strategist",
    "Product Marketing Manager",
)


def read_titles(path) -> list[str]:
    """Read a title list for a heatmap: one title per line, blank lines skipped."""
    from pathlib import Path

    from domaintune.errors import UserError

    path = Path(path)
    try:
        titles = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"--titles: cannot read '{path}' ({exc}); pass a UTF-8 text "
            "file with one title per line."
        ) from None
    titles = [t for t in titles if t]
    if len(titles) < 2:
        raise UserError(
            f"--titles: '{path}' holds {len(titles)} title(s); a heatmap "
            "needs at least 2, one per line."
        )
    return titles
