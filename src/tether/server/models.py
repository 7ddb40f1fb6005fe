"""The request and response bodies, as pydantic models: they validate input at the boundary (strict
JSON types, unknown fields refused) and make `/openapi.json` describe exactly what is answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from tether.core.model import Liveness, State
from tether.core.validation import MAX_COUNTER, MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_SECONDS

Text = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Epoch = Annotated[int, Field(ge=1, le=MAX_COUNTER, description="fencing token: your lease's epoch")]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
Document = dict[str, Any]
MAX_BEATS = 10_000


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class CreateSession(Body):
    agent_type: Text
    user_id: Text | None = Field(None, description="required for admin keys; a user key's own user otherwise")
    context: Document | None = None
    metadata: Document | None = None
    session_id: Text | None = None
    parent_session_id: Text | None = None
    worker_id: Text | None = Field(None, description="the owner; default: the server's worker id")
    if_exists: Literal["raise", "return_existing"] = "raise"


class UpdateSession(Body):
    context: Document | None = None
    metadata: Document | None = None
    epoch: Epoch | None = None


class Fenced(Body):
    epoch: Epoch | None = None


class Complete(Body):
    result: Document | None = None
    epoch: Epoch | None = None


class Fail(Body):
    error: str  # bounded by the library's payload limit (413), as embedded
    details: Document | None = None
    final: bool = False
    epoch: Epoch | None = None


class Heartbeat(Body):
    epoch: Epoch | None = None
    phase: Name | None = None
    expect_silence: Seconds | None = None


@with_config(ConfigDict(strict=True, extra="forbid"))
class Beat(TypedDict):
    """One beat of a batch: a TypedDict, as strict as a model and validated twice as fast (a batch
    holds up to 10,000)."""

    session_id: Text
    epoch: NotRequired[Epoch | None]
    phase: NotRequired[Name | None]
    expect_silence: NotRequired[Seconds | None]


class Heartbeats(Body):
    beats: Annotated[list[Beat], Field(min_length=1, max_length=MAX_BEATS)]


class Claim(Body):
    worker_id: Text | None = None


class TimeOut(Body):
    """An empty object: the verdict takes no arguments (If-Match pins the version)."""


class ClaimNext(Body):
    agent_types: Annotated[list[Text], Field(max_length=1000)] | None = None
    worker_id: Text | None = None


class NewCheckpoint(Body):
    name: Name
    data: Document | None = None
    epoch: Epoch | None = None


def _text_only(value: object) -> object:
    """A date-time is an ISO 8601 string: a number (lax pydantic's Unix time) is refused."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


Instant = Annotated[datetime, BeforeValidator(_text_only), Field(strict=False, description="ISO 8601")]


class Purge(Body):
    """One cutoff: an age at the server's clock, or an instant (a naive one is UTC, as embedded)."""

    older_than: Annotated[float, Field(ge=0, le=MAX_SECONDS, description="seconds")] | None = None
    before: Instant | None = None
    states: list[Annotated[State, Field(strict=False)]] | None = None  # enums from their JSON strings

    @model_validator(mode="after")
    def one_cutoff(self) -> Purge:
        if (self.older_than is None) == (self.before is None):
            raise ValueError("give exactly one of older_than and before")
        return self

    def cutoff(self) -> datetime | timedelta:
        return self.before if self.before is not None else timedelta(seconds=self.older_than or 0.0)


class Fork(Body):
    at_seq: Annotated[int, Field(ge=0, le=MAX_COUNTER)] | None = Field(
        None, description="copy checkpoints up to this seq; default: the last"
    )
    agent_type: Text | None = None
    user_id: Text | None = Field(None, description="default: the source's; a user key: its own only")
    worker_id: Text | None = Field(None, description="the fork's owner; default: the server's worker id")


# -- responses -------------------------------------------------------------------------------
class FailureOut(BaseModel):
    error: str
    details: Document
    final: bool


class SessionOut(BaseModel):
    session_id: str
    agent_type: str
    user_id: str
    state: State
    created_at: datetime
    last_heartbeat: datetime
    state_since: datetime | None
    context: Document | None = Field(None, description="left out of list items unless include=context")
    metadata: Document | None = Field(None, description="left out of list items unless include=context")
    parent_session_id: str | None
    version: int
    owner: str | None
    epoch: int
    heartbeat_timeout: float
    suspect_after: float
    lease_expires_at: datetime | None
    suspect_at: datetime | None
    phase: str | None
    recoveries: int
    ended_at: datetime | None
    failure: FailureOut | None
    last_seq: int
    liveness: Liveness | None


class SessionList(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class CheckpointOut(BaseModel):
    session_id: str
    seq: int
    name: str
    timestamp: datetime
    data: Document


class CheckpointList(BaseModel):
    items: list[CheckpointOut]
    next_cursor: str | None


class ProblemOut(BaseModel):
    """RFC 9457 problem details; `code` is stable, extension members depend on it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str | None = None


class HeartbeatResults(BaseModel):
    results: list[ProblemOut | None]


class CountOut(BaseModel):
    state: State
    agent_type: str
    liveness: Liveness | None
    count: int
    oldest_heartbeat: datetime


class Stats(BaseModel):
    counts: list[CountOut]
    oldest_heartbeat: datetime | None
    at: datetime


class Me(BaseModel):
    user_id: str | None
    admin: bool
    key_id: str | None
    open_mode: bool


class Imported(BaseModel):
    imported: int


class Erased(BaseModel):
    erased: int


class Purged(BaseModel):
    purged: int


class Status(BaseModel):
    status: str


class PolicyOut(BaseModel):
    timeout: float = Field(description="seconds without a heartbeat before the lease expires")
    suspect_after: float | None = Field(description="the soft deadline; null: half the timeout")
    on_timeout: Literal["fail", "recover"]
    max_recoveries: int
    retain_completed: float | None = Field(description="seconds an ended session is kept; null: for ever")
    retain_failed: float | None


class PoliciesOut(BaseModel):
    default: PolicyOut = Field(description="for every agent type without a policy of its own")
    by_type: dict[str, PolicyOut]


class RetiredOut(BaseModel):
    agent_type: str | None = Field(description="null: every type without a policy of its own")
    state: State
    ended_before: datetime
    session_ids: list[str]


class RetentionOut(BaseModel):
    dry_run: bool
    removed: int
    rules: list[RetiredOut]
