"""Distributed search on KerasTuner's chief/worker oracle service.

KerasTuner's distributed mode: a chief process serves the oracle over gRPC and
workers pull trials from it (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``). domaintune adds what a long search on many
machines needs:

- workers send a heartbeat while they train; the chief sends the trial of a
  worker silent for ``lease_seconds`` to another worker (once, then it is
  failed), so a dead worker never stalls the search;
- workers started before the chief wait for it, with a log line, and a wrong
  host/port is a clear error after a bounded wait;
- the chief serves from the project directory's saved state, so a restarted
  chief resumes the search.

All processes share one project directory (e.g. on NFS): the chief writes the
trials' state there, workers their checkpoints and TensorBoard logs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from concurrent import futures
from dataclasses import dataclass

from domaintune import kt_compat
from domaintune.errors import UserError

log = logging.getLogger("domaintune")

HEARTBEAT_SECONDS = float(os.environ.get("DOMAINTUNE_HEARTBEAT_SECONDS", "10"))
CHIEF_ID = "chief"


@dataclass(frozen=True)
class Cluster:
    """This process's part in a distributed search."""

    role: str  # "chief" | "worker"
    host: str
    port: int
    worker_id: str = ""

    @property
    def tuner_id(self) -> str:
        return CHIEF_ID if self.role == "chief" else f"worker-{self.worker_id}"

    def export_environment(self) -> None:
        """Set the variables KerasTuner reads to find the oracle."""
        os.environ.update(
            KERASTUNER_TUNER_ID=self.tuner_id,
            KERASTUNER_ORACLE_IP=self.host,
            KERASTUNER_ORACLE_PORT=str(self.port),
        )


#: KerasTuner's variables for a distributed search, an alternative to the options.
ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)
_ENV_HELP = (
    f"set all three of {ENV_TUNER_ID} (chief, or worker-ID), {ENV_ORACLE_IP} and "
    f"{ENV_ORACLE_PORT}, or use --role, --oracle HOST:PORT and --worker-id instead; "
    "unset them for a single-process search."
)


def cluster_from_options(
    role: str | None, oracle: str | None, worker_id: str | None
) -> Cluster | None:
    """The cluster from CLI options, else from KerasTuner's environment
    (``KERASTUNER_TUNER_ID`` ``chief`` or ``worker-ID``, ``KERASTUNER_ORACLE_IP``,
    ``KERASTUNER_ORACLE_PORT``: all three, or none)."""
    if role is None and (from_env := _cluster_from_environment(os.environ)) is not None:
        if oracle or worker_id:
            raise UserError(
                "--oracle/--worker-id need --role chief|worker; with the KERASTUNER_* "
                "variables set, use either them or the three options, not both."
            )
        return from_env
    if role is None:
        if oracle or worker_id:
            raise UserError("--oracle/--worker-id need --role chief|worker.")
        return None
    if not oracle:
        raise UserError(f"--role {role} needs --oracle HOST:PORT (the chief's address).")
    host, _, port = oracle.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--oracle '{oracle}': expected HOST:PORT, e.g. 10.0.0.5:8000.")
    if role == "worker" and not worker_id:
        raise UserError("--role worker needs a --worker-id unique to this worker, e.g. 1.")
    if role == "worker" and not _valid_worker_id(worker_id):
        raise UserError(
            f"--worker-id '{worker_id}': use letters, digits, '.', '_' or '-' "
            "(and not the word 'chief', which KerasTuner reserves), e.g. 1."
        )
    return Cluster(role, host, int(port), worker_id or "")


def _valid_worker_id(worker_id: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]+", worker_id)) and "chief" not in worker_id


def _cluster_from_environment(env) -> Cluster | None:
    """The cluster KerasTuner's variables describe; None when none is set. A
    partial or malformed set is an error naming the variable: silently running a
    single-process search would write a shared project directory on its own."""
    names = (ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT)
    given = [name for name in names if env.get(name, "").strip()]
    if not given:
        return None
    if missing := [name for name in names if name not in given]:
        raise UserError(f"{', '.join(given)} set but not {', '.join(missing)}: {_ENV_HELP}")
    tuner_id, host, port = (env[name].strip() for name in names)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{ENV_ORACLE_PORT}='{port}': expected a port number, e.g. 8000.")
    if "chief" in tuner_id:  # as KerasTuner decides
        return Cluster("chief", host, int(port))
    worker_id = tuner_id.removeprefix("worker-")
    if not _valid_worker_id(worker_id):
        raise UserError(
            f"{ENV_TUNER_ID}='{tuner_id}': use 'chief' or 'worker-ID' with an ID unique to "
            "this worker, of letters, digits, '.', '_' or '-', e.g. worker-1."
        )
    return Cluster("worker", host, int(port), worker_id)


def wait_for_oracle(cluster: Cluster, timeout: float) -> None:
    """Block until the chief answers; a clear error after ``timeout`` seconds."""
    import grpc

    address = f"{cluster.host}:{cluster.port}"
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        while True:
            try:
                grpc.channel_ready_future(channel).result(timeout=min(5.0, timeout))
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"No oracle answered at {address} within {timeout:.0f}s. Start the "
                        "chief first (domaintune search --role chief --oracle HOST:PORT ...) "
                        "and check the host and port, or raise --connect-timeout."
                    ) from None
                log.warning("Waiting for the oracle at %s ...", address)


class Heartbeat:
    """Worker side: tells the chief every few seconds that a trial is alive."""

    def __init__(self, oracle, trial_id: str, every: float = HEARTBEAT_SECONDS):
        self.oracle, self.trial_id, self.every = oracle, trial_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.oracle.get_trial(self.trial_id)
            except Exception as exc:  # the chief may be restarting; keep training
                log.warning("Heartbeat to the oracle failed: %s", exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)


class RetryingOracle:
    """Worker side: an OracleClient whose calls ride out a chief restart.

    KerasTuner's client waits for a chief that is not up yet, but a call in
    flight when the chief goes down fails; retry it for ``patience`` seconds.
    """

    def __init__(self, client, patience: float):
        self._client, self._patience = client, patience

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            import grpc

            deadline = time.monotonic() + self._patience
            while True:
                try:
                    return attribute(*args, **kwargs)
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    log.warning("Oracle unavailable (%s); retrying.", exc.details())
                    time.sleep(1.0)

        return call

    def __setattr__(self, name, value):
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            setattr(self._client, name, value)


def serve_oracle(oracle, cluster: Cluster, lease_seconds: float) -> None:
    """Chief side: serve ``oracle`` until every trial has ended."""
    import grpc

    if lease_seconds < 3 * HEARTBEAT_SECONDS:
        raise UserError(
            f"--lease-timeout {lease_seconds:g} is shorter than 3 heartbeats "
            f"({3 * HEARTBEAT_SECONDS:g}s): live workers would lose their trials."
        )
    leases = Leases()
    failure: list[RuntimeError] = []

    class LeaseServicer(kt_compat.oracle_servicer_class()):
        """Records when each trial and worker was last heard of."""

        def CreateTrial(self, request, context):
            if failure:  # stopped after too many consecutive failures
                self.stop_triggered = True
                oracle.tuner_ids.discard(request.tuner_id)
                return kt_compat.stopped_trial_response(oracle)
            response = super().CreateTrial(request, context)
            leases.seen(request.tuner_id, response.trial.trial_id or None)
            return response

        def GetTrial(self, request, context):
            leases.seen_trial(oracle, request.trial_id)
            return super().GetTrial(request, context)

        def UpdateTrial(self, request, context):
            leases.seen_trial(oracle, request.trial_id)
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            try:
                return super().EndTrial(request, context)
            except RuntimeError as exc:  # too many consecutive failures
                failure.append(exc)
                kt_compat.record_failed_end(oracle, request.trial.trial_id)
                return kt_compat.end_trial_response()

    servicer = LeaseServicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    kt_compat.add_oracle_servicer(servicer, server)
    try:
        server.add_insecure_port(f"{cluster.host}:{cluster.port}")
    except RuntimeError:
        raise UserError(
            f"Cannot listen on {cluster.host}:{cluster.port} (in use, or not an "
            "address of this machine). Choose another --oracle port."
        ) from None
    server.start()
    log.warning("Oracle serving on %s:%s; start the workers.", cluster.host, cluster.port)
    try:
        while not kt_compat.chief_finished(servicer, oracle):
            time.sleep(0.5)
            expire_silent(oracle, leases, lease_seconds)
            if failure and not oracle.ongoing_trials:
                raise failure[0]
    finally:
        server.stop(grace=2)


class Leases:
    """When each worker (tuner id) and each running trial was last heard of."""

    def __init__(self):
        self.workers: dict[str, float] = {}
        self.trials: dict[str, float] = {}

    def seen(self, tuner_id: str, trial_id: str | None) -> None:
        now = time.monotonic()
        self.workers[tuner_id] = now
        if trial_id:
            self.trials[trial_id] = now

    def seen_trial(self, oracle, trial_id: str) -> None:
        for tuner_id, trial in list(oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.seen(tuner_id, trial_id)


def expire_silent(oracle, leases: Leases, lease_seconds: float) -> None:
    """End the trials of workers silent for longer than the lease; forget
    silent workers between trials, so the chief does not wait for them.

    The trial is ended as INVALID, which KerasTuner retries on another worker
    (``max_retries_per_trial``) and fails after that. Runs under the oracle's
    lock, so it cannot interleave with a worker's own report.
    """
    import keras_tuner as kt  # here, not at import: `search` must not load TF early

    kt.synchronized(_expire_silent)(oracle, leases, lease_seconds)


def _expire_silent(oracle, leases: Leases, lease_seconds: float) -> None:
    now = time.monotonic()
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        silent = now - leases.trials.setdefault(trial.trial_id, now)
        if silent <= lease_seconds or trial.status != "RUNNING":
            continue
        log.warning(
            "Worker %s silent for %.0fs: trial %s is sent for retry.",
            tuner_id,
            silent,
            trial.trial_id,
        )
        trial.status = "INVALID"
        trial.message = f"worker {tuner_id} stopped responding (no heartbeat for {silent:.0f}s)"
        oracle.end_trial(trial)
        oracle.tuner_ids.discard(tuner_id)
        leases.trials.pop(trial.trial_id, None)
    busy = set(oracle.ongoing_trials)
    for tuner_id in list(oracle.tuner_ids):
        idle = now - leases.workers.setdefault(tuner_id, now)
        if tuner_id not in busy and idle > lease_seconds:
            log.warning(
                "Worker %s silent for %.0fs between trials: no longer waited for.", tuner_id, idle
            )
            oracle.tuner_ids.discard(tuner_id)
