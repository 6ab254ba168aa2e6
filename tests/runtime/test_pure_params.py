"""Which params models validate and dump with no code of their own (``pure_params``)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    FutureDatetime,
    InstanceOf,
    PastDate,
    PlainSerializer,
    Tag,
    computed_field,
    field_serializer,
    field_validator,
    model_validator,
)

from runtime.jobs.pure_params import plain_copy, validation_is_pure


class Empty(BaseModel):
    pass


class Plain(BaseModel):
    n: int
    name: str = "x"
    tags: list[str] = []
    at: datetime | None = None
    nested: Empty | None = None
    mapping: dict[str, float] = {}


class Color(enum.Enum):
    RED = "red"


class Missing(enum.Enum):
    RED = "red"

    @classmethod
    def _missing_(cls, value: object) -> Missing:
        return cls.RED


class Factory(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)


class FieldValidated(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def check(cls, value: int) -> int:
        return value


class ModelValidated(BaseModel):
    n: int

    @model_validator(mode="after")
    def check(self) -> ModelValidated:
        return self


class Annotated_(BaseModel):
    n: Annotated[int, AfterValidator(lambda v: v)]


class Serialized(BaseModel):
    n: int

    @field_serializer("n")
    def dump(self, value: int) -> int:
        return value


class PlainSerialized(BaseModel):
    n: Annotated[int, PlainSerializer(lambda v: v)]


class Computed(BaseModel):
    n: int

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented use
    @property
    def twice(self) -> int:
        return 2 * self.n


class PostInit(BaseModel):
    n: int

    def model_post_init(self, context: Any, /) -> None:
        return None


class Future(BaseModel):
    at: FutureDatetime


class Past(BaseModel):
    on: list[PastDate] = []


class A(BaseModel):
    kind: Literal["a"] = "a"


class B(BaseModel):
    kind: Literal["b"] = "b"


class CallableDiscriminator(BaseModel):
    item: Annotated[
        Annotated[A, Tag("a")] | Annotated[B, Tag("b")],
        Discriminator(lambda v: v.get("kind") if isinstance(v, dict) else v.kind),
    ]


class StringDiscriminator(BaseModel):
    item: A | B = Field(discriminator="kind")


class Thing:
    pass


class Instance(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    thing: InstanceOf[Thing] | None = None


class Nested(BaseModel):
    inner: FieldValidated


class WithEnum(BaseModel):
    color: Color


class WithMissing(BaseModel):
    color: Missing


@pytest.mark.parametrize("model", [Empty, Plain, WithEnum, StringDiscriminator])
def test_a_model_of_plain_fields_is_pure(model: type[BaseModel]) -> None:
    assert validation_is_pure(model)


@pytest.mark.parametrize(
    "model",
    [
        Factory,
        FieldValidated,
        ModelValidated,
        Annotated_,
        Serialized,
        PlainSerialized,
        Computed,
        PostInit,
        Nested,
        WithMissing,
        Future,
        Past,
        CallableDiscriminator,
        Instance,
    ],
)
def test_a_model_that_brings_code_is_not(model: type[BaseModel]) -> None:
    assert not validation_is_pure(model)


def test_a_plain_copy_shares_no_container() -> None:
    value = {"a": [1, {"b": [2.5, None, "c"]}], "d": {}}
    copied = plain_copy(value)
    assert copied == value
    assert copied is not value and copied["a"] is not value["a"]
    assert copied["a"][1] is not value["a"][1] and copied["d"] is not value["d"]
