"""Celery tasks of recordings_app: thin wrappers over recordings_app.jobs (the work and its bookkeeping)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="recordings.run_job", ignore_result=True)
def run_recording_job(job_id: int) -> str:
    """Run one import or export job; its Job row records progress, outcome and errors."""
    from recordings_app.jobs import run_job

    job = run_job(job_id)
    return job.status if job is not None else "missing"
