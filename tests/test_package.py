"""The package's shape: `import tinygan as tg` gives the library, and imports point downward."""
import json
import subprocess
import sys

import tinygan as tg

HEAVY = ("PIL", "matplotlib", "cupy", "tinygan.train", "tinygan.data", "tinygan.viz", "tinygan.fid")


def modules_after(statement):
    """The heavy modules a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys; {statement}; import json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_import_tinygan_gives_the_library():
    assert callable(tg.nn.Conv2d) and callable(tg.optim.Adam) and callable(tg.losses.BCEWithLogitsLoss)
    assert callable(tg.init.dcgan_init) and callable(tg.gradcheck.check_module)
    assert tg.backend.name() in ("numpy", "cupy")
    G = tg.ModelConfig(nz=8, ngf=4).generator(rng=0)
    assert isinstance(G, tg.Generator) and G(G.sample_noise(tg.backend.default_rng(0), 2)).shape == (2, 3, 64, 64)


def test_importing_the_core_loads_neither_pillow_matplotlib_cupy_nor_training():
    assert modules_after("import tinygan") == []


def test_using_a_trained_model_does_not_import_the_training_loop_or_the_data_pipeline():
    assert modules_after("import tinygan.sampling, tinygan.nn, tinygan.ema, tinygan.checkpoint, tinygan.dcgan") == []


def test_the_readme_quick_start_runs_and_learns():
    """The first Python block of README.md, run as a user would paste it."""
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loss = float(result.stdout.strip().split()[-1])
    assert loss < 0.3, result.stdout                      # the quadrant problem is learnt


def test_the_shipped_generator_names_no_folder_of_the_machine_that_made_it():
    """generator.json and the provenance inside generator.npz say which data and weights, by name only."""
    import json
    import re

    from tinygan import checkpoint, model_files

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        return [value] if isinstance(value, str) else []
    shipped = json.loads(model_files.PRETRAINED.with_suffix(".json").read_text(encoding="utf-8"))
    inside = checkpoint.load(model_files.PRETRAINED)["provenance"]
    assert inside == shipped
    paths = [s for s in strings(shipped) if re.match(r"(/|~|\.\./|[A-Za-z]:[\\/])\S", s)]
    assert not paths, paths
    assert shipped["training_config"]["data"] == "celeba_align_89x109_10k.tar"
