"""Tables as the dashboard shows them: float cells rounded (in float64, so a float32 0.37 reads
0.37, not 0.37000000476837), integers left alone."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

DIGITS = 4


def rounded(frame: pd.DataFrame, digits: int = DIGITS) -> pd.DataFrame:
    """``frame`` with every float column cast to float64 and rounded to ``digits`` decimals."""
    floats = frame.select_dtypes("floating").columns
    if len(floats) == 0:
        return frame
    return frame.astype({c: "float64" for c in floats}).round({c: digits for c in floats})


def show_table(frame: pd.DataFrame, *, key: str, digits: int = DIGITS, where: Any = st, **kwargs: Any) -> None:
    """``where.dataframe`` (a column, an expander or ``st``) of :func:`rounded` ``frame``."""
    where.dataframe(rounded(frame, digits), key=key, **kwargs)
