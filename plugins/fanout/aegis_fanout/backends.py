"""Where the tasks run. `ray`: one Ray task per model with its CPU/GPU resources, retried by Ray only on
`InfrastructureError` or a lost worker. `local`: a thread pool on this machine with the same retry rule.
Both return one `TaskResult` per entry, in manifest order, and advance a progress callback."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from aegis_runner import Failure

from .manifest import Entry
from .task import InfrastructureError, TaskConfig, TaskResult, audit_entry

Progress = Callable[[TaskResult], None]


@dataclass(frozen=True)
class Resources:
    """Per task: CPUs and GPUs (Ray resources; `local` runs cpu_count / cpus tasks at once), and how many
    times an infrastructure failure is retried."""

    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 2


def _give_up(entry: Entry, error: BaseException, attempts: int) -> TaskResult:
    cause = error.cause if hasattr(error, "cause") and error.cause else error  # Ray wraps the task's exception
    message = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
    return TaskResult.failed(entry.index, entry.uri, Failure.INFRASTRUCTURE, f"{message} (after {attempts} attempts)")


def run_local(
    entries: Sequence[Entry], config: TaskConfig, resources: Resources, progress: Progress,
    parallel: int | None = None,
) -> list[TaskResult]:  # fmt: skip
    """Run every entry in a thread pool (each thread waits on one aegis-audit process)."""
    workers = parallel or max(1, int((os.cpu_count() or 1) // max(resources.cpus, 1)))

    def attempt(entry: Entry) -> TaskResult:
        for n in range(1, resources.retries + 2):
            try:
                return audit_entry(entry.index, entry.uri, config)
            except InfrastructureError as e:
                if n == resources.retries + 1:
                    return _give_up(entry, e, n)
        raise AssertionError("unreachable")

    results: dict[int, TaskResult] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(attempt, e) for e in entries]
        for future in as_completed(futures):
            result = future.result()
            results[result.index] = result
            progress(result)
    return [results[e.index] for e in entries]


def run_ray(
    entries: Sequence[Entry], config: TaskConfig, resources: Resources, progress: Progress,
    address: str | None = None, num_cpus: int | None = None,
) -> list[TaskResult]:  # fmt: skip
    """One Ray task per entry. Connects to `address` (or starts a local instance with `num_cpus`) unless
    Ray is already initialised in this process."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(audit_entry).options(
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        max_retries=resources.retries,  # a worker or node lost: always worth another attempt
        retry_exceptions=[InfrastructureError],  # and nothing the model itself caused
    )
    pending = {remote.remote(e.index, e.uri, config): e for e in entries}
    results: dict[int, TaskResult] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            entry = pending.pop(ref)
            try:
                result = ray.get(ref)
            except (InfrastructureError, ray.exceptions.RayError) as e:
                result = _give_up(entry, e, resources.retries + 1)
            results[entry.index] = result
            progress(result)
    return [results[e.index] for e in entries]
