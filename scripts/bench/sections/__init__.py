"""The table of sections: every module listed here is a section (see ``scripts/bench/__init__.py``)."""

from ..core import Section
from . import compose, data, footprint, page, profile, proxy, quality, status, threads, train

# In the document's order: each section's markdown, its summary rows and its time sinks appear in it.
SECTIONS: tuple[Section, ...] = tuple(
    Section.of(module) for module in (train, threads, data, page, status, footprint, profile, quality, compose,
                                        proxy))
BY_NAME = {s.name: s for s in SECTIONS}
# The order they run in. The page goes first, in a process that has not trained yet, as in `seghw infer`;
# status reads the footprint run's keys, so it follows footprint; quality, the longest, goes last.
RUN_ORDER = ("page", "train", "threads", "profile", "data", "footprint", "status", "proxy", "quality", "compose")
