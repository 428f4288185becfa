"""Runs of the workspace's code location, executed in this process.

``job.execute_in_process`` records a run with no code-location origin: the Dagster UI leaves it
out of the job's pages and the Overview timeline, and re-executing it warns of a version
mismatch. ``crypto-analytics run`` therefore creates its runs the way ``dagster job launch``
does, from the same code location as ``workspace.yaml`` (same location and repository names,
same job snapshots), and executes them here, where the lake lock, the embedded services and the
progress output live. The UI then lists them beside its own runs and re-executes them as its own.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.api import execute_run
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from crypto_assets.freshness import FRESHNESS_CHECKS

REPO = Path(__file__).resolve().parents[1]
# workspace.yaml loads this module; Dagster names the location after it.
MODULE = "crypto_assets.definitions"
LOCATION_NAME = MODULE


class CodeLocationRunner:
    """Creates runs with the code location's origin and job snapshots, and executes them here."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance

    @cached_property
    def _location(self) -> Any:
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable, module_name=MODULE, working_directory=str(REPO)
            ),
            location_name=LOCATION_NAME,
        )
        return origin.create_location(self.instance)

    @cached_property
    def _repository(self) -> Any:
        return next(iter(self._location.get_repositories().values()))

    def assets(self, job_name: str) -> list[str]:
        from crypto_assets.definitions import defs

        job = defs.resolve_job_def(job_name)
        return sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys)

    def downstream(self, job_name: str, asset: str) -> set[str]:
        """The job's assets that read ``asset``, directly or through others (not ``asset``)."""
        from crypto_assets.definitions import defs

        graph = defs.resolve_job_def(job_name).asset_layer.asset_graph
        found: set[AssetKey] = set()
        frontier = [AssetKey(asset)]
        while frontier:
            for child in graph.get(frontier.pop()).child_keys:
                if child not in found and graph.has(child):
                    found.add(child)
                    frontier.append(child)
        return {key.to_user_string() for key in found}

    def _checks_of(self, job_name: str, assets: Sequence[AssetKey]) -> frozenset[AssetCheckKey]:
        """The job's checks on ``assets``, without the freshness checks (the sensor's business)."""
        from crypto_assets.definitions import defs

        selected = set(assets)
        job = defs.resolve_job_def(job_name)
        freshness = {key for checks in FRESHNESS_CHECKS for key in checks.check_keys}
        return (
            frozenset(
                key for key in job.asset_layer.asset_graph.asset_check_keys if key.asset_key in selected
            )
            - freshness
        )

    def execute(
        self,
        job_name: str,
        run_config: Mapping[str, Any],
        tags: Mapping[str, str],
        assets: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """Create the run (origin, snapshots, plan) as the UI would, then execute it here."""
        from dagster._utils.hosted_user_process import recon_job_from_origin

        asset_keys = [AssetKey(a) for a in assets] if assets else None
        check_keys = self._checks_of(job_name, asset_keys) if asset_keys else None
        selector = JobSubsetSelector(
            location_name=self._location.name,
            repository_name=self._repository.name,
            job_name=job_name,
            op_selection=None,
            asset_selection=asset_keys,
            asset_check_selection=check_keys,
        )
        remote_job = self._location.get_job(selector)
        plan = self._location.get_execution_plan(
            remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
        ).execution_plan_snapshot
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=remote_job.resolved_op_selection,
            step_keys_to_execute=plan.step_keys_to_execute,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(asset_keys) if asset_keys else None,
            asset_check_selection=check_keys,
            asset_graph=self._repository.asset_graph,
        )
        job = recon_job_from_origin(remote_job.get_python_origin())
        if asset_keys:
            job = job.get_subset(asset_selection=frozenset(asset_keys), asset_check_selection=check_keys)
        return execute_run(job, run, self.instance)
