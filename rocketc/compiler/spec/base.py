"""The base every spec model shares: strict, frozen, finite numbers only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    # No inf/nan: every number is printed into generated Python, where `inf` is a NameError.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
