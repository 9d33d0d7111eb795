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
