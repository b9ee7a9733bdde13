"""What each kind of job does: call the library on the model's device worker, report steps, return the view's data.

Each ``*_task(state, request)`` checks what it can at once (so a bad request is refused before a job exists)
and returns the function the job thread runs. Model work goes through ``loaded.worker``; between steps the
job honours a cancel.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from lmxray.experiments.datasets import pair_source, read_pairs
from lmxray.experiments.sweep import SweepConfig, run_sweep, sweep_store
from lmxray.experiments.sweep_report import finish_sweep
from lmxray.flow import flow as run_flow
from lmxray.flow.routes import check_threshold, routes
from lmxray.probes.generate import check_generation_args, logit_trace
from lmxray.probes.heads import check_probe_memory, head_scores_vs_baseline, model_head_scores, probe_set, \
    random_twins
from lmxray.server.jobs import Job
from lmxray.server.registry import Loaded
from lmxray.server.schemas import FlowRequest, HeadsRequest, LogitsRequest, RoutesRequest, SweepRequest
from lmxray.server.security import inside
from lmxray.server.state import ServerState
from lmxray.views import flow_view, head_scores_view, logits_view, sweep_view
from lmxray.views.routes import routes_view

Task = Callable[[Job], dict]
T = TypeVar("T")


def _loaded(state: ServerState, spec: str, job: Job, total: int) -> Loaded:
    """The job's model, loaded on its worker if this is its first use (step 0 of ``total``)."""
    job.step(0, total, f"loading {spec}" if state.registry.entry(spec).loaded is None else "queued on the device")
    return state.registry.get(spec)


def _on_device(job: Job, loaded: Loaded, fn: Callable[[], T]) -> T:
    """Run ``fn`` on the model's worker; a cancel asked while it waited in the queue skips it, one asked while it
    ran is honoured when it returns."""
    def guarded() -> T:
        job.check()
        return fn()

    result = loaded.worker.run(guarded)
    job.check()
    return result


def flow_task(state: ServerState, req: FlowRequest) -> Task:
    state.registry.entry(req.model)

    def run(job: Job) -> dict:
        loaded = _loaded(state, req.model, job, 2)
        job.step(1, 2, "decomposing the residual stream")
        result = _on_device(job, loaded, lambda: run_flow(loaded.model, req.prompt, position=req.position,
                                                          tokens=tuple(req.tokens), versus=req.versus,
                                                          groups=req.groups))
        return flow_view(result).to_dict()

    return run


def routes_task(state: ServerState, req: RoutesRequest) -> Task:
    state.registry.entry(req.model)
    check_threshold(req.threshold)

    def run(job: Job) -> dict:
        loaded = _loaded(state, req.model, job, 2)
        job.step(1, 2, "edge importances and routes")
        result = _on_device(job, loaded, lambda: routes(loaded.model, req.prompt, position=req.position,
                                                        threshold=req.threshold))
        return routes_view(result).to_dict()

    return run


def logits_task(state: ServerState, req: LogitsRequest) -> Task:
    state.registry.entry(req.model)
    check_generation_args(req.steps, req.top_k, req.temperature)

    def run(job: Job) -> dict:
        loaded = _loaded(state, req.model, job, 2)
        job.step(1, 2, f"generating {req.steps} steps")
        result = _on_device(job, loaded, lambda: logit_trace(loaded.model, req.prompt, steps=req.steps,
                                                             top_k=req.top_k, temperature=req.temperature,
                                                             seed=req.seed))
        return logits_view(result).to_dict()

    return run


def heads_task(state: ServerState, req: HeadsRequest) -> Task:
    """Scores on the probe set; with ``baseline="random"`` against ``baseline_seeds`` random-init twins, one
    twin per step (a cancel is honoured before each twin)."""
    state.registry.entry(req.model)
    twins = req.baseline_seeds if req.baseline == "random" else 0
    total = 2 + twins

    def run(job: Job) -> dict:
        loaded = _loaded(state, req.model, job, total)
        job.step(1, total, "scoring the model's heads")

        def baseline():
            seeds = range(req.seed + 1, req.seed + 1 + twins)
            # random_twin reads a served ``random:SPEC`` as SPEC (models.loader.RANDOM_PREFIX): twins of SPEC
            for n, twin in enumerate(random_twins(req.model, seeds, state.registry.device, state.registry.dtype), 1):
                yield twin
                job.step(1 + n, total, f"scored random-init twin {n} of {twins}")

        def work():
            model = loaded.model
            check_probe_memory(model, req.repeats, len(req.layers or range(model.info.n_layers)))
            probes = probe_set(model, n_repeats=req.repeats)
            if twins:
                scores, _ = head_scores_vs_baseline(model, baseline(), f"random init ({twins} seeds)", probes,
                                                    req.layers)
            else:
                scores = model_head_scores(model, probes, req.layers)
            return head_scores_view(scores, top=req.top, probes=probes)

        return _on_device(job, loaded, work).to_dict()

    return run


def sweep_task(state: ServerState, req: SweepRequest) -> Task:
    """A sweep of a shipped pair set into the run folder ``req.folder`` under --runs (resumable: parts are kept
    when the job is cancelled between batches, and a later job with the same folder continues)."""
    state.registry.entry(req.model)
    folder = inside(state.config.runs, req.folder, "folder")
    config = SweepConfig(batch_size=req.batch_size, align=req.align, threshold=req.threshold, limit=req.limit)
    pairs = read_pairs(pair_source(req.dataset))
    store = sweep_store(folder, req.model, config)
    store.check(req.fresh)

    def run(job: Job) -> dict:
        loaded = _loaded(state, req.model, job, 1)

        def work():
            with store:  # one run per folder: a second job on it is refused at once
                run_sweep(loaded.model, pairs, store, config, fresh=req.fresh,
                          progress=lambda done, total: job.step(done, total + 1, f"{done} of {total} pairs"))
                chosen = pairs[: config.limit] if config.limit else pairs
                finish_sweep(store, chosen, config.threshold, loaded.model.info.name)

        _on_device(job, loaded, work)
        view = sweep_view(folder)
        view.run = req.folder  # the folder's name under --runs, not the server's path
        return view.to_dict()

    return run
