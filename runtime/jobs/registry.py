"""Job types, job groups and queues, and the registry that holds them."""

from __future__ import annotations

import hashlib
import inspect
import json
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, Unpack

from pydantic import BaseModel, ValidationError

from actors import check_capacity
from runtime.domain.checks import INT_MAX, is_finite, is_int
from runtime.domain.errors import DuplicateJobType, InvalidJobType, InvalidParams, UnknownJobType
from runtime.domain.limits import RateLimit, parse_rate_limit
from runtime.jobs.context import HookContext, JobContext
from runtime.jobs.sync_handlers import SyncJobContext

QUEUE_DEFAULT = "default"
GROUP_DEFAULT = "default"
QUEUE_CAPACITY_DEFAULT = 10
MAX_RETRIES_DEFAULT = 3
RETRY_DELAY_DEFAULT = 1.0

# ``async def handler(ctx: JobContext, params)``, or a plain ``def`` taking a
# ``SyncJobContext`` (run in a worker thread, runtime.jobs.sync_handlers).
Handler = Callable[["JobContext", Any], Awaitable[Any]] | Callable[["SyncJobContext", Any], Any]
F = TypeVar("F", bound=Handler)
Upgrade = Callable[[int, Any], Any]  # (checkpoint version, state) -> state for this version
Predicate = Callable[["JobContext"], "bool | Awaitable[bool]"]
Hook = Callable[["HookContext"], "Any | Awaitable[Any]"]


class JobOptions(TypedDict, total=False):
    version: int
    upgrade: Upgrade | None
    lock: str | None
    max_concurrency: int | None
    rate_limit: str | None
    unique: bool
    should_run: Predicate | None
    suspendable: bool
    on_suspend: Hook | None
    on_resume: Hook | None
    internal: bool


@dataclass(frozen=True, slots=True)
class JobGroup:
    """A named family of job types (for listing and filtering)."""

    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Queue:
    """A named queue and how many of its jobs may run at once in one runtime."""

    name: str
    capacity: int = QUEUE_CAPACITY_DEFAULT

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"queue name must be a non-empty str, got {self.name!r}")
        check_capacity(self.name, self.capacity)


@dataclass(frozen=True, slots=True)
class JobType:
    """A registered handler with its params model and defaults."""

    name: str
    handler: Handler
    params_model: type[BaseModel]
    group: str = GROUP_DEFAULT
    queue: str = QUEUE_DEFAULT
    timeout: float | None = None
    max_retries: int = MAX_RETRIES_DEFAULT
    retry_delay: float = RETRY_DELAY_DEFAULT
    priority: int = 0
    description: str = ""
    version: int = 1
    upgrade: Upgrade | None = None
    lock: str | None = None
    max_concurrency: int | None = None
    rate_limit: str | None = None
    unique: bool = False
    should_run: Predicate | None = None
    suspendable: bool = True
    on_suspend: Hook | None = None
    on_resume: Hook | None = None
    # The runtime's own machinery (status hook deliveries): interfaces neither
    # list nor enqueue it, so a client cannot forge one.
    internal: bool = False

    @property
    def is_sync(self) -> bool:
        """A plain ``def`` handler, run in a worker thread."""
        return not inspect.iscoroutinefunction(self.handler)

    @property
    def rate(self) -> RateLimit | None:
        return None if self.rate_limit is None else parse_rate_limit(self.rate_limit)

    def lock_key_for(self, params: dict[str, Any]) -> str | None:
        """The resource lock key of a job with these (validated, JSON) params."""
        if self.lock is None:
            return None
        try:
            return self.lock.format(**params)
        except (KeyError, IndexError, AttributeError, ValueError, TypeError) as err:
            # ValueError/TypeError: a format spec or conversion that these params' values
            # do not support (the template itself was checked at registration).
            raise InvalidParams(
                self.name,
                [
                    {
                        "loc": ["lock"],
                        "msg": f"lock template {self.lock!r} cannot be filled: {err!r}",
                        "type": "lock",
                    }
                ],
            ) from err

    def unique_key_for(self, params: dict[str, Any], tenant_id: str | None) -> str | None:
        """Equal params of a unique type share this key (per tenant)."""
        if not self.unique:
            return None
        canonical = json.dumps(
            [self.name, tenant_id, params], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def validate(self, params: Any) -> BaseModel:
        """Validate ``params`` (a mapping or a model instance) into the params model."""
        # A dict (the usual case, and every stored one) skips the isinstance
        # checks against model classes, which go through ABCMeta's slow path.
        if type(params) is not dict:
            if isinstance(params, self.params_model):
                return params
            if isinstance(params, BaseModel):
                params = params.model_dump()
            if params is None:
                params = {}
        try:
            return self.params_model.model_validate(params)
        except ValidationError as err:
            raise InvalidParams(self.name, _plain_errors(err)) from err

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "queue": self.queue,
            "description": self.description,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "priority": self.priority,
            "params_schema": self.params_model.model_json_schema(),
        }


def _plain_errors(err: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, JSON-safe (no exception objects in ``ctx``)."""
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False)
    ]


class Registry:
    """Holds job types, groups and queues by name."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._groups: dict[str, JobGroup] = {GROUP_DEFAULT: JobGroup(GROUP_DEFAULT)}
        self._queues: dict[str, Queue] = {QUEUE_DEFAULT: Queue(QUEUE_DEFAULT)}

    def job(
        self,
        name: str | None = None,
        *,
        group: str = GROUP_DEFAULT,
        queue: str = QUEUE_DEFAULT,
        timeout: float | None = None,
        max_retries: int = MAX_RETRIES_DEFAULT,
        retry_delay: float = RETRY_DELAY_DEFAULT,
        priority: int = 0,
        description: str | None = None,
        params: type[BaseModel] | None = None,
        **options: Unpack[JobOptions],
    ) -> Callable[[F], F]:
        """Register ``async def handler(ctx, params: Model)`` as a job type.

        The params model comes from the annotation of the second argument,
        or from ``params=`` when given. ``options`` are the other fields of
        :class:`JobType` (version, upgrade, lock, max_concurrency,
        rate_limit, unique, should_run, suspendable, on_suspend, on_resume,
        internal).
        """

        def register(handler: F) -> F:
            model = _params_model(handler, params)
            doc = inspect.getdoc(handler) or ""
            try:
                job_type = JobType(
                    name=name or handler.__name__,
                    handler=handler,
                    params_model=model,
                    group=group,
                    queue=queue,
                    timeout=timeout,
                    max_retries=max_retries,
                    retry_delay=retry_delay,
                    priority=priority,
                    description=description if description is not None else doc,
                    **options,
                )
            except TypeError as err:  # an option JobType does not have
                raise InvalidJobType(f"job type {name or handler.__name__!r}: {err}") from err
            self.add(job_type)
            return handler

        return register

    def add(self, job_type: JobType) -> JobType:
        # Everything is checked before anything is stored: a refused type leaves
        # no trace, so a corrected retry does not hit DuplicateJobType.
        _check_options(job_type)
        if job_type.name in self._types:
            raise DuplicateJobType(f"job type {job_type.name!r} is already registered")
        self._types[job_type.name] = job_type
        self._groups.setdefault(job_type.group, JobGroup(job_type.group))
        self._queues.setdefault(job_type.queue, Queue(job_type.queue))
        return job_type

    def add_group(self, group: JobGroup) -> None:
        self._groups[group.name] = group

    def add_queue(self, queue: Queue) -> None:
        self._queues[queue.name] = queue

    def get(self, name_or_handler: str | Callable[..., Any]) -> JobType:
        if isinstance(name_or_handler, str):
            name = name_or_handler
        else:
            name = self._name_of(name_or_handler)
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(name, list(self._types)) from None

    def get_public(self, name: str) -> JobType:
        """The type named ``name`` unless it is internal: what interfaces (HTTP, CLI)
        may enqueue. An internal type is as unknown there as a missing one."""
        job_type = self._types.get(name)
        if job_type is None or job_type.internal:
            raise UnknownJobType(name, [t.name for t in self.public_types()])
        return job_type

    def _name_of(self, handler: Callable[..., Any]) -> str:
        for job_type in self._types.values():
            if job_type.handler is handler:
                return job_type.name
        return getattr(handler, "__name__", repr(handler))

    def types(self) -> list[JobType]:
        """Every type, internal ones too: in-process code is trusted with them."""
        return sorted(self._types.values(), key=lambda t: t.name)

    def public_types(self) -> list[JobType]:
        """The types interfaces list and enqueue: all but the internal ones."""
        return [t for t in self.types() if not t.internal]

    def groups(self) -> list[JobGroup]:
        return sorted(self._groups.values(), key=lambda g: g.name)

    def public_groups(self) -> list[JobGroup]:
        """The groups interfaces list: all but those holding only internal types."""
        hidden = {t.group for t in self._types.values() if t.internal}
        hidden -= {t.group for t in self._types.values() if not t.internal}
        return [g for g in self.groups() if g.name not in hidden]

    def queues(self) -> list[Queue]:
        return sorted(self._queues.values(), key=lambda q: q.name)

    def describe(self) -> list[dict[str, Any]]:
        """Every type with its params JSON schema."""
        return [t.describe() for t in self.types()]


def _params_model(handler: Callable[..., Any], given: type[BaseModel] | None) -> type[BaseModel]:
    if (
        not callable(handler)
        or inspect.isasyncgenfunction(handler)
        or inspect.isgeneratorfunction(handler)
    ):
        raise InvalidJobType(
            f"job handler {handler!r} must be an async def or a plain def function"
        )
    params = list(inspect.signature(handler).parameters.values())
    if len(params) != 2:
        raise InvalidJobType(
            f"job handler {handler.__qualname__} must take (ctx, params), takes {len(params)}"
        )
    model = given if given is not None else _annotation(handler, params[1].annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidJobType(
            f"the params argument of {handler.__qualname__} must be annotated with a "
            f"pydantic BaseModel subclass (or pass params=Model), got {model!r}"
        )
    return model


def _annotation(handler: Callable[..., Any], annotation: Any) -> Any:
    """Resolve one postponed annotation the way ``typing.get_type_hints`` would."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, getattr(handler, "__globals__", {}))  # annotation text
    except NameError as err:
        raise InvalidJobType(
            f"cannot resolve the params annotation of {handler.__qualname__} ({err}); "
            "define the model at module level or pass params=Model"
        ) from err


def _check_options(job_type: JobType) -> None:
    """Raise :class:`InvalidJobType` naming the first option that cannot be used."""
    name = job_type.name
    if not isinstance(name, str) or not name:
        raise InvalidJobType(f"job type name must be a non-empty str, got {name!r}")
    problem = _option_problem(job_type)
    if problem is not None:
        raise InvalidJobType(f"job type {name!r}: {problem}")


def _option_problem(t: JobType) -> str | None:
    for field in ("group", "queue"):
        value = getattr(t, field)
        if not isinstance(value, str) or not value:
            return f"{field} must be a non-empty str, got {value!r}"
    if t.timeout is not None and not (is_finite(t.timeout) and t.timeout > 0):
        return f"timeout must be > 0 (a finite number, or None), got {t.timeout!r}"
    if not (is_int(t.max_retries) and 0 <= t.max_retries <= INT_MAX):
        return f"max_retries must be >= 0 (an int up to {INT_MAX}), got {t.max_retries!r}"
    if not (is_finite(t.retry_delay) and t.retry_delay >= 0):
        return f"retry_delay must be >= 0 (a finite number), got {t.retry_delay!r}"
    if not (is_int(t.priority) and -INT_MAX - 1 <= t.priority <= INT_MAX):
        return f"priority must be an int within {-INT_MAX - 1}..{INT_MAX}, got {t.priority!r}"
    if not isinstance(t.description, str):
        return f"description must be a str, got {t.description!r}"
    if not (is_int(t.version) and 1 <= t.version <= INT_MAX):
        return f"version must be >= 1 (an int up to {INT_MAX}), got {t.version!r}"
    if t.max_concurrency is not None and not (
        is_int(t.max_concurrency) and 1 <= t.max_concurrency <= INT_MAX
    ):
        return f"max_concurrency must be >= 1 (an int, or None), got {t.max_concurrency!r}"
    if t.lock is not None:
        problem = _lock_problem(t.lock)
        if problem is not None:
            return problem
    if t.rate_limit is not None:
        if not isinstance(t.rate_limit, str):
            return f"rate_limit must be a str such as '100/minute', got {t.rate_limit!r}"
        try:
            parse_rate_limit(t.rate_limit)
        except ValueError as err:
            return str(err)
    for flag in ("unique", "suspendable", "internal"):
        if not isinstance(getattr(t, flag), bool):
            return f"{flag} must be a bool, got {getattr(t, flag)!r}"
    for hook in ("upgrade", "should_run", "on_suspend", "on_resume"):
        value = getattr(t, hook)
        if value is not None and not callable(value):
            return f"{hook} must be callable (or None), got {value!r}"
    return None


def _lock_problem(lock: object) -> str | None:
    """Why ``lock`` is not a usable template, so that a bad one fails at
    registration rather than at every enqueue."""
    if not isinstance(lock, str) or not lock:
        return f"lock must be a non-empty str template, got {lock!r}"
    try:
        parsed = list(string.Formatter().parse(lock))
    except ValueError as err:
        return f"lock template {lock!r} is malformed: {err}"
    for _literal, field, _spec, conversion in parsed:
        if field is None:
            continue
        # Keys come from the params (format(**params)): a positional field never fills.
        if not field or field[0].isdigit():
            return f"lock template {lock!r}: fields must name params, e.g. {{user_id}}"
        if conversion is not None and conversion not in "rsa":
            return f"lock template {lock!r}: unknown conversion !{conversion}"
    return None


default_registry = Registry()


# The default registry's own method, so a type checker sees every option typed.
job = default_registry.job
