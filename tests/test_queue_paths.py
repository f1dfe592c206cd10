"""rq stores each job's function as a dotted path: jobs queued by an earlier version, still in a
persistent Redis after an upgrade, must find their function."""

from rq.utils import import_attribute

from seghw.queue import jobs, submit


def test_the_job_path_that_submit_stores_imports():
    assert import_attribute(submit.JOB_FUNC) is jobs.run_training


def test_jobs_queued_by_the_earlier_layout_still_find_their_function():
    assert import_attribute("seghw.stack.jobs.run_training") is jobs.run_training
