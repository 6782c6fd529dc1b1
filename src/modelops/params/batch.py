"""The batch kind of `deploy.environments`: the released model scores a table on a schedule.

A batch environment is released like the real-time ones (`modelops release deploy` pins the
model's content hash, `rollback` goes back to the previous model) and rendered as a Kubernetes
CronJob running `modelops-score` in the serving image (engine `local`) or as a spark-operator
ScheduledSparkApplication (engine `spark`). Traffic means nothing here, so the real-time keys
(canary steps, replicas, autoscaling) are refused with what to do instead, not ignored.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Annotated, Literal, Self, TypeAlias

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from modelops.params.base import (
    DNS_LABEL,
    Frozen,
    ResourcesParams,
    StepDuration,
    duration_seconds,
)

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_URL = r"^[a-z][a-z0-9+.-]*://\S+$"
_SPARK_MEMORY = r"^[1-9][0-9]*[kmgt]?$"
_SPARK_VERSION = r"^[0-9]+\.[0-9]+\.[0-9]+$"
MAX_BATCH_NAME = 52
"""Longest CronJob name Kubernetes accepts (its Jobs append an 11-character suffix)."""
CRON_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field, lowest, highest, names from the lowest on): the five fields of a standard cron line,
# as Kubernetes' CronJob controller and spark-operator both parse it.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


def cron_problem(schedule: str) -> str | None:
    """What is wrong with a cron schedule (five fields, or a macro such as @daily), or None."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "a time zone inside the schedule is refused by Kubernetes: set time_zone instead"
    if text.startswith("@"):
        macros = ", ".join(sorted(CRON_MACROS))
        return None if text in CRON_MACROS else f"{text} is not one of {macros}"
    fields = text.split()
    if len(fields) != len(_CRON_FIELDS):
        return (
            f"a cron schedule has 5 fields (minute hour day-of-month month day-of-week), "
            f"'{schedule}' has {len(fields)}; e.g. '0 2 * * *' is 02:00 every day"
        )
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value.lower(), low=low, high=high, names=names)
        if problem:
            return f"{name} '{value}': {problem}"
    return None


CRON_MACRO_LINES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SCAN_FROM, _SCAN_DAYS = dt.date(2024, 1, 1), 8 * 366
"""The days `longest_gap_seconds` looks at: eight years, two leap days, every weekday/date."""
SPARK_RUN_GRACE_SECONDS = 6 * 3600
"""How late a spark run may finish before it counts as missed (spark-operator sets no
deadline; the local engine's is `timeout`)."""


def longest_gap_seconds(schedule: str) -> int:
    """The longest time between two consecutive runs of a valid cron schedule, in wall-clock
    seconds (a daylight-saving change moves it by an hour; the missed-run alert's grace covers it).

    Raises:
        ValueError: the schedule runs less than twice in eight years (e.g. on February 30th).
    """
    fields = CRON_MACRO_LINES.get(schedule.strip(), schedule).lower().split()
    values = [
        _cron_values(value, low=low, high=high, names=names)
        for value, (_, low, high, names) in zip(fields, _CRON_FIELDS, strict=True)
    ]
    minutes, hours, days, months, weekdays = values
    # Cron's rule: with both day fields restricted, a day matching either runs.
    either = not fields[2].startswith("*") and not fields[4].startswith("*")
    times = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    matching = []
    for offset in range(_SCAN_DAYS):
        day = _SCAN_FROM + dt.timedelta(days=offset)
        on_date, on_weekday = day.day in days, (day.weekday() + 1) % 7 in weekdays
        if day.month in months and ((on_date or on_weekday) if either else on_date and on_weekday):
            matching.append(offset)
    if len(matching) * len(times) < 2:
        raise ValueError(f"'{schedule}' runs less than twice in eight years")
    within = max((b - a for a, b in itertools.pairwise(times)), default=0)
    between = max(
        ((b - a) * 1440 + times[0] - times[-1] for a, b in itertools.pairwise(matching)),
        default=0,
    )
    return max(within, between) * 60


def _cron_values(value: str, *, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    """The numbers a valid cron field stands for."""
    found: set[int] = set()
    for part in value.lower().split(","):
        span, _, step = part.partition("/")
        if span in ("*", "?"):
            first, last = low, high
        else:
            ends = [low + names.index(e) if e in names else int(e) for e in span.split("-")]
            first, last = ends[0], ends[-1] if len(ends) == 2 or step else ends[0]
            if step and len(ends) == 1:
                last = high
        found.update(range(first, last + 1, int(step) if step else 1))
    return found


def _cron_field_problem(value: str, *, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for part in value.split(","):
        span, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return f"the step after / must be a whole number of at least 1, got '{step}'"
        if span in ("*", "?"):
            continue
        ends = span.split("-")
        if len(ends) > 2 or not all(ends):
            return f"'{span}' is neither a number, a name, a range a-b nor *"
        numbers = []
        for end in ends:
            number = low + names.index(end) if end in names else int(end) if end.isdigit() else None
            if number is None or not low <= number <= high:
                allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
                return f"'{end}' is outside {allowed}"
            numbers.append(number)
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return f"the range {span} runs backwards"
    return None


def _relative_folder(path: str) -> str:
    """`path` as a folder inside a claim, or why it cannot be one."""
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or any(p.strip() != p for p in parts):
        raise ValueError(
            "give a folder relative to the claim's root, without .. or spaces around names, "
            "e.g. scores/churn"
        )
    return path.strip("/")


_Folder: TypeAlias = Annotated[str, AfterValidator(_relative_folder)]


class ClaimPath(Frozen):
    """A folder on a PersistentVolumeClaim of the environment's namespace."""

    claim: str = Field(pattern=_DNS_SUBDOMAIN, description="The PersistentVolumeClaim's name.")
    path: _Folder = Field("", description="A folder inside the claim ('' for its root).")


class InputLocation(Frozen):
    """Where the rows to score are: a URL, or a folder on a claim (exactly one of them)."""

    url: str | None = Field(
        None,
        pattern=_URL,
        description="s3://bucket/prefix, gs://..., https://...: engine local downloads it with "
        "the storage initializer (deploy.storage_secret's credentials), engine spark reads it.",
    )
    claim: str | None = Field(
        None, pattern=_DNS_SUBDOMAIN, description="A PersistentVolumeClaim, mounted read-only."
    )
    path: _Folder = Field("", description="With claim: a folder or file inside it.")

    @model_validator(mode="after")
    def _url_or_claim(self) -> Self:
        if (self.url is None) == (self.claim is None):
            raise ValueError(
                "give either url (s3://bucket/prefix, gs://..., https://...) or claim (a "
                "PersistentVolumeClaim, with path inside it), not both nor neither"
            )
        if self.url is not None and self.path:
            raise ValueError("path is a folder inside a claim; with url, put it in the URL")
        return self


class SparkPodParams(Frozen):
    """A Spark driver's or executor's size: Spark's own cores and JVM memory.

    spark-operator asks Kubernetes for `memory` plus Spark's overhead, as request and limit;
    the CPU limit is set to `cores`, so a pod never takes more than it was scheduled for.
    """

    cores: int = Field(1, ge=1)
    memory: str = Field(
        "2g", pattern=_SPARK_MEMORY, description="JVM heap in Spark's notation: 512m, 2g."
    )


class SparkExecutorParams(SparkPodParams):
    """The executors: how many, and each one's size (bigger than the driver's by default)."""

    cores: int = Field(2, ge=1)
    memory: str = Field("4g", pattern=_SPARK_MEMORY, description="JVM heap of each executor.")
    instances: int = Field(2, ge=1)


class SparkParams(Frozen):
    """How the spark engine runs: image, Spark version, service account, driver and executors."""

    image: str = Field(
        "ghcr.io/your-org/modelops-spark:0.1.0",
        min_length=1,
        description="An image with Spark, Python 3.11 and modelops_serving (pin a tag or digest): "
        "`make spark-image` builds serving/Dockerfile.spark.",
    )
    version: str = Field(
        "4.3.0",
        pattern=_SPARK_VERSION,
        description="Spark in that image: serving/Dockerfile.spark's is the pyspark of "
        "serving/uv.lock.",
    )
    main_application_file: str = Field(
        "local:///app/modelops_serving/score_cli.py",
        pattern=r"^local:///\S+\.py$",
        description="Where the image holds modelops_serving/score_cli.py (local:// is inside "
        "the image).",
    )
    service_account: str = Field(
        "spark-operator-spark",
        pattern=DNS_LABEL,
        description="The driver's service account, allowed to create the executor pods (the "
        "spark-operator Helm chart creates spark-operator-spark in its job namespaces).",
    )
    driver: SparkPodParams = SparkPodParams()
    executor: SparkExecutorParams = SparkExecutorParams()


_REALTIME_ONLY = {
    "canary_steps": "a batch run scores every row with one model: there is no traffic to split",
    "canary_replicas": "a batch run is one Job, not replicas serving traffic",
    "shadow_first": "a batch environment takes a new model at once, as strategy direct does",
    "autoscaling": "a batch run is one Job: size it with resources (engine local) or spark",
    "target": "a batch run is a CronJob or a ScheduledSparkApplication (choose it with engine), "
    "not a model server on Seldon or KServe",
}
_LOCAL_ONLY = {
    "resources": "size the Spark pods with spark.driver and spark.executor",
    "timeout": "spark-operator has no deadline for a run",
    "starting_deadline_seconds": "spark-operator starts a missed run at the next schedule",
}


class BatchEnvironmentParams(Frozen):
    """A batch environment: the released model scores `input` into `output` on a schedule."""

    namespace: str = Field(pattern=DNS_LABEL)
    strategy: Literal["batch"] = Field(
        description="`batch`: a CronJob (engine local) or ScheduledSparkApplication (engine "
        "spark) scores a table with the released model; a new model replaces it at once."
    )
    schedule: str = Field(
        description="Cron, five fields in time_zone ('0 2 * * *': 02:00 daily) or @daily etc."
    )
    time_zone: str = Field("Etc/UTC", description="IANA time zone of the schedule.")
    suspend: bool = Field(False, description="true: no new run starts (a running one finishes).")
    engine: Literal["local", "spark"] = Field(
        "local",
        description="`local`: one pod runs modelops-score; `spark`: spark-operator runs it on "
        "a driver and executors (settings under `spark`).",
    )
    input: InputLocation = Field(
        description="What to score: a CSV or Parquet file, a folder of them, or a partitioned "
        "Parquet dataset, at {url: ...} or {claim: NAME, path: FOLDER}."
    )
    output: ClaimPath = Field(
        description="The folder the scores replace at each run (atomically), on a claim; with "
        "engine spark the claim must be ReadWriteMany (the driver and executors mount it)."
    )
    id_columns: tuple[str, ...] = Field(
        (), description="Key columns copied to the output (default: the row's position)."
    )
    max_refused: int = Field(1000, ge=0, description="Rows refused before the run fails.")
    batch_rows: int = Field(100_000, ge=1, description="Rows read, scored and written at a time.")
    resources: ResourcesParams = Field(
        default_factory=lambda: ResourcesParams(
            cpu="500m", memory="1Gi", cpu_limit="1", memory_limit="2Gi"
        ),
        description="The scoring container's requests and limits (engine local).",
    )
    spark: SparkParams | None = Field(
        None, validate_default=True, description="Required with engine spark, only then."
    )
    concurrency_policy: Literal["Forbid", "Replace"] = Field(
        "Forbid",
        description="A run never overlaps another: Forbid skips a run while one is going, "
        "Replace stops the going one (its output stays as it was) and starts the new one.",
    )
    successful_runs_history_limit: int = Field(3, ge=0, description="Finished runs kept.")
    failed_runs_history_limit: int = Field(3, ge=0, description="Failed runs kept, with logs.")
    backoff_limit: int = Field(
        2,
        ge=0,
        description="Retries of a failed run. Engine local never retries a refusal (exit 1: the "
        "input or the refused rows), which would be refused again; engine spark retries any.",
    )
    starting_deadline_seconds: int = Field(
        3600,
        ge=10,
        description="A run that could not start on time (controller down, Forbid) starts "
        "late within this many seconds, or is skipped (engine local).",
    )
    timeout: StepDuration = Field(
        "6h", description="A run still going after this is stopped (engine local)."
    )
    # Real-time keys, declared only to refuse them with why (not in the schema, never dumped).
    canary_steps: SkipJsonSchema[None] = Field(None, exclude=True)
    canary_replicas: SkipJsonSchema[None] = Field(None, exclude=True)
    shadow_first: SkipJsonSchema[None] = Field(None, exclude=True)
    autoscaling: SkipJsonSchema[None] = Field(None, exclude=True)
    target: SkipJsonSchema[None] = Field(None, exclude=True)

    @field_validator(
        "canary_steps", "canary_replicas", "shadow_first", "autoscaling", "target", mode="before"
    )
    @classmethod
    def _realtime_key(cls, value: object, info: ValidationInfo) -> None:
        raise ValueError(
            f"not for strategy batch: {_REALTIME_ONLY[str(info.field_name)]}. Delete this key "
            "(a new model replaces the batch one at once; `modelops release rollback` goes "
            "back to the previous model)"
        )

    @field_validator("input", mode="before")
    @classmethod
    def _a_location_not_a_path(cls, location: object) -> object:
        if isinstance(location, str):
            raise ValueError(
                "give {url: s3://bucket/prefix} (or gs://, https://...) or {claim: NAME, path: "
                "FOLDER}: a string alone does not say which"
            )
        return location

    @field_validator("output")
    @classmethod
    def _output_inside_the_claim(cls, output: ClaimPath) -> ClaimPath:
        if not output.path:
            raise ValueError(
                "give path, a folder inside the claim: a run writes the new scores beside it "
                "and swaps them in, so the output cannot be the claim's root"
            )
        return output

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        problem = cron_problem(schedule)
        if problem:
            raise ValueError(problem)
        longest_gap_seconds(schedule)  # a schedule that (almost) never runs is refused
        return schedule.strip()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{zone}' is not an IANA time zone; e.g. Etc/UTC, Europe/Paris, America/New_York"
            ) from None
        return zone

    @field_validator("concurrency_policy", mode="before")
    @classmethod
    def _never_overlap(cls, policy: object) -> object:
        if policy == "Allow":
            raise ValueError(
                "Allow would start a run while the previous one still writes the same output; "
                "use Forbid (skip the new run) or Replace (stop the old one)"
            )
        return policy

    @field_validator("id_columns")
    @classmethod
    def _distinct_columns(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        if any(not column.strip() for column in columns) or len(set(columns)) < len(columns):
            raise ValueError(f"give distinct, non-empty column names, got {list(columns)}")
        return columns

    @field_validator("spark")
    @classmethod
    def _spark_needs_the_spark_engine(
        cls, spark: SparkParams | None, info: ValidationInfo
    ) -> SparkParams | None:
        engine = info.data.get("engine")
        if spark is not None and engine == "local":
            raise ValueError("only with engine: spark; delete it, or set engine: spark")
        if spark is None and engine == "spark":
            raise ValueError("engine spark needs its settings: give spark: {image: ...}")
        return spark

    @field_validator(*_LOCAL_ONLY)
    @classmethod
    def _local_engine_keys(cls, value: object, info: ValidationInfo) -> object:
        # Runs only for keys written in the file. Their default is let through with engine
        # spark too, so that what `modelops params` prints reads back.
        name = str(info.field_name)
        default = cls.model_fields[name].get_default(call_default_factory=True)
        if info.data.get("engine") == "spark" and value != default:
            raise ValueError(f"not for engine spark: {_LOCAL_ONLY[name]}")
        return value


def missed_after_seconds(environment: BatchEnvironmentParams) -> int:
    """How long after its last success a batch environment has missed a run: the longest gap
    between two scheduled runs, plus the time a run may take (`timeout`, engine local) or
    SPARK_RUN_GRACE_SECONDS (engine spark)."""
    grace = (
        duration_seconds(environment.timeout)
        if environment.engine == "local"
        else SPARK_RUN_GRACE_SECONDS
    )
    return longest_gap_seconds(environment.schedule) + grace


def batch_name(deploy_name: str, environment: str) -> str:
    """The CronJob's (or ScheduledSparkApplication's) name: the model's, then the environment's."""
    return f"{deploy_name}-{environment}"


def batch_name_problem(deploy_name: str, environment: str) -> str | None:
    """Why the batch objects of `environment` cannot be named, or None."""
    name = batch_name(deploy_name, environment)
    if len(name) <= MAX_BATCH_NAME:
        return None
    return (
        f"{environment}: its batch objects would be named {name} "
        f"({len(name)} characters), longer than the {MAX_BATCH_NAME} Kubernetes allows a "
        "CronJob; shorten the environment's name or deploy.name"
    )
