"""The base of every op's params model and the constrained number types they share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class OpParams(BaseModel):
    """Base of every op's params: closed (unknown fields are an error) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
