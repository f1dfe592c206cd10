"""Write the model graph for VisualDL's Graphs tab: ``python -m seghw.graph_export ...``.

VisualDL's ``LogWriter.add_graph`` converts the live model with ``paddle.jit.to_static`` and reads
Paddle's legacy program format, which Paddle 3 no longer produces by default. This builds the same
model in a legacy static program instead, in a process of its own (``FLAGS_enable_pir_api=0`` must
be set before Paddle is imported), so the training process and its model are never touched.

The graph depends only on the model's source, its settings (``seghw.model.model_settings``), the
input size and the versions of Paddle and VisualDL, so it is cached under that key: a later run of
the same model copies it instead of exporting again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GRAPH_GLOB = "vdlgraph.*.log"


def cached_graph_file(cache: Path, model: dict, image_size: int) -> Path:
    """Where the graph of ``build_model(**model)`` at ``image_size`` is cached."""
    import paddle
    import visualdl

    import seghw.model

    key = hashlib.sha256()
    for source in (seghw.model.__file__, __file__):
        key.update(Path(source).read_bytes())
    key.update(f"{paddle.__version__}|{visualdl.__version__}|{json.dumps(model, sort_keys=True)}|{image_size}".encode())
    return Path(cache) / "graphs" / f"{key.hexdigest()[:24]}.json"


def _graph_log(run_dir: Path) -> Path:
    return Path(run_dir) / f"vdlgraph.{int(time.time()):010d}.log"


def copy_cached_graph(run_dir: Path, cached: Path) -> Path | None:
    """The run's graph file from the cache; None if this model was never exported, or if its cache
    entry cannot be read (the caller exports again: the cache only saves time)."""
    from seghw.atomic import write_bytes_atomic

    try:
        graph = cached.read_bytes()
    except OSError:
        return None
    return write_bytes_atomic(_graph_log(run_dir), graph)


def start_export(run_dir: Path, model: dict, image_size: int, cache_file: Path | None = None) -> subprocess.Popen:
    """Export in the background (and into ``cache_file``); the caller may wait for it or not."""
    env = dict(os.environ, FLAGS_enable_pir_api="0", GLOG_minloglevel="2", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "seghw.graph_export", "--out", str(run_dir), "--model", json.dumps(model),
           "--image-size", str(image_size)]
    if cache_file is not None:
        cmd += ["--cache-file", str(cache_file)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _legacy_functional(paddle):
    """``F`` for seghw.model: F.sigmoid in Paddle 3 has no legacy-program path, so append the op."""
    from paddle.base.layer_helper import LayerHelper

    def sigmoid(x):
        helper = LayerHelper("sigmoid")
        out = helper.create_variable_for_type_inference(x.dtype)
        helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
        return out

    class LegacyF:
        pixel_shuffle = staticmethod(paddle.nn.functional.pixel_shuffle)
        max_pool2d = staticmethod(paddle.nn.functional.max_pool2d)
        avg_pool2d = staticmethod(paddle.nn.functional.avg_pool2d)

    LegacyF.sigmoid = staticmethod(sigmoid)
    return LegacyF


def export_graph(out: Path, model: dict, image_size: int, cache_file: Path | None = None) -> Path:
    import warnings

    warnings.filterwarnings("ignore")
    import paddle
    from visualdl.component.graph.graph_component import analyse_model
    from visualdl.component.graph.utils import create_opname_scope

    import seghw.model as model_module
    from seghw.atomic import write_bytes_atomic

    paddle.enable_static()
    model_module.F = _legacy_functional(paddle)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        layer = model_module.build_model(**model)
        # The naming VisualDL's add_graph gives layers, so the tab groups them the same way.
        layer._full_name = f"{type(layer).__name__}[model]"
        create_opname_scope(layer)
        layer(paddle.static.data("image", [1, 3, image_size, image_size], "float32"))
    graph = json.dumps(analyse_model(main.desc.serialize_to_string())).encode("utf-8")
    # The run's own file first: an unwritable cache costs later runs an export, not this run its graph.
    path = write_bytes_atomic(_graph_log(out), graph)
    if cache_file is not None:
        try:
            write_bytes_atomic(cache_file, graph)  # creates the cache folder
        except OSError as exc:
            print(f"note: graph cache not written ({exc})", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=json.loads, required=True, help="build_model's settings as JSON")
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--cache-file", type=Path, help="also write the graph here, for later runs")
    args = parser.parse_args(argv)
    if os.environ.get("FLAGS_enable_pir_api") != "0":
        parser.error("set FLAGS_enable_pir_api=0 (use start_export)")
    # A background helper of the trainer: on a busy machine the training step gets the core first.
    os.nice(10)
    export_graph(args.out, args.model, args.image_size, args.cache_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
