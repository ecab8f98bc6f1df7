"""Command line: ``python -m mscmeta pool FILE.csv``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mscmeta.cli import main

HEADER = "study,events_t,n_t,events_c,n_c\n"
# metafor dat.bcg (trial, tpos, tneg, cpos, cneg) as events/totals
BCG = [
    (1, 4, 119, 11, 128), (2, 6, 300, 29, 274), (3, 3, 228, 11, 209), (4, 62, 13536, 248, 12619),
    (5, 33, 5036, 47, 5761), (6, 180, 1361, 372, 1079), (7, 8, 2537, 10, 619), (8, 505, 87886, 499, 87892),
    (9, 29, 7470, 45, 7232), (10, 17, 1699, 65, 1600), (11, 186, 50448, 141, 27197), (12, 5, 2493, 3, 2338),
    (13, 27, 16886, 29, 17825),
]
JSON_KEYS = ["k", "estimate", "ci_low", "ci_high", "log_estimate", "se", "z", "p_value", "Q", "Q_df", "Q_p", "I2", "H2",
             "tau2", "tau2_ci_low", "tau2_ci_high", "pi_low", "pi_high", "measure", "method", "model", "tau2_method",
             "zero_cell"]


@pytest.fixture
def bcg_csv(tmp_path) -> Path:
    path = tmp_path / "bcg.csv"
    path.write_text(HEADER + "".join(f"trial {t},{a},{a + b},{c},{c + d}\n" for t, a, b, c, d in BCG))
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readable_table(capsys, bcg_csv):
    code, out, err = run(capsys, "pool", str(bcg_csv))
    assert code == 0 and err == ""
    # Mantel-Haenszel OR 0.6229 [0.5748, 0.6750] (metafor vs Stata metan, test_misc_metan_vs_rma.mh_with_dat.bcg.r)
    assert "Pooled OR (fixed, MH, k = 13): 0.6229 [0.5748, 0.6750]" in out
    assert "trial 13" in out and "Q = 163.9426, df = 12" in out


def test_json_output(capsys, bcg_csv):
    code, out, _ = run(capsys, "pool", str(bcg_csv), "--measure", "rr", "--method", "iv", "--model", "random",
                       "--tau2", "REML", "--json")
    assert code == 0
    d = json.loads(out)
    assert all(key in d for key in JSON_KEYS)
    # metafor docs/reference/rma.uni.html and confint.rma.html (REML, log RR): -0.7145 [-1.0669, -0.3622],
    # tau2 0.3132 [0.1197, 1.1115]; estimate/CI on the RR scale
    assert abs(d["log_estimate"] - (-0.7145)) <= 0.5e-4
    assert d["estimate"] == pytest.approx(2.718281828459045 ** d["log_estimate"])
    assert abs(d["tau2"] - 0.3132) <= 0.5e-4
    assert abs(d["tau2_ci_low"] - 0.1197) <= 0.5e-4 and abs(d["tau2_ci_high"] - 1.1115) <= 0.5e-4
    assert d["measure"] == "RR" and d["method"] == "IV" and d["model"] == "random" and d["tau2_method"] == "REML"
    assert d["zero_cell"] == "revman" and d["pi_low"] < d["ci_low"]


def test_json_nulls_for_fixed_effect(capsys, bcg_csv):
    code, out, _ = run(capsys, "pool", str(bcg_csv), "--json", "--measure", "RD")
    d = json.loads(out)
    assert code == 0 and d["tau2_ci_low"] is None and d["pi_low"] is None and d["log_estimate"] is None
    assert d["tau2_method"] is None and d["tau2"] == 0.0


@pytest.mark.parametrize(
    ("content", "args", "fragment"),
    [
        (HEADER + "A,12,10,3,20\nB,1,20,2,20\n", [], "study 'A' (row 1), column 'events_t': events (12) greater than"),
        (HEADER + "A,-1,10,3,20\nB,1,20,2,20\n", [], "negative count -1"),
        (HEADER + "A,1.5,10,3,20\nB,1,20,2,20\n", [], "non-integer count '1.5'"),
        (HEADER + "A,one,10,3,20\nB,1,20,2,20\n", [], "column 'events_t': non-numeric value 'one'"),
        (HEADER + "A,1,10,3,20\nA,1,20,2,20\n", [], "duplicate study id"),
        (HEADER + "A,1,10,,20\nB,1,20,2,20\n", [], "column 'events_c': missing value"),
        ("study,events,n_t,events_c,n_c\nA,1,10,3,20\n", [], "missing column(s) 'events_t'"),
        (HEADER, [], "no studies"),
        (HEADER + "A,1,10,3,20\n", ["--model", "random"], "random-effects model needs at least 2 studies"),
        (HEADER + "A,1,10,3,20\nB,1,20,2,20\n", ["--measure", "HR"], "unknown measure 'HR'; valid values"),
        (HEADER + "A,1,10,3,20\nB,1,20,2,20\n", ["--model", "random", "--tau2", "XX"], "unknown tau2 method 'XX'"),
        (HEADER + "A,1,10,3,20\nB,1,20,2,20\n", ["--zero-cell", "tacc"], "unknown zero_cell 'tacc'"),
        (HEADER + "A,0,10,0,20\nB,0,20,0,20\n", [], "no study has an estimable OR"),
    ],
)
def test_bad_input_exit_2_one_line(capsys, tmp_path, content, args, fragment):
    path = tmp_path / "input.csv"
    path.write_text(content)
    code, out, err = run(capsys, "pool", str(path), *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err
    assert str(path) in err or "unknown" in err or "random-effects" in err


def test_missing_file_and_bad_arguments(capsys, tmp_path):
    code, _, err = run(capsys, "pool", str(tmp_path / "nope.csv"))
    assert code == 2 and "no such file" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["pool", "x.csv", "--bogus"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_python_dash_m_entry_point(bcg_csv, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "mscmeta", "pool", str(bcg_csv), "--json", "--method", "Peto"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    # Peto OR 0.6222 [0.5746, 0.6738] (metafor vs metan, test_misc_metan_vs_rma.peto_with_dat.bcg.r)
    assert abs(d["estimate"] - 0.6222) <= 0.5e-4 and abs(d["ci_low"] - 0.5746) <= 0.5e-4
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "A,9,5,1,5\nB,1,5,1,5\n")
    fail = subprocess.run([sys.executable, "-m", "mscmeta", "pool", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert fail.returncode == 2 and fail.stdout == ""
    assert fail.stderr.count("\n") == 1 and "Traceback" not in fail.stderr


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_forest_plot_for_any_csv_with_the_arms_named_by_labels(capsys, bcg_csv, tmp_path, monkeypatch, suffix):
    import mscmeta.cli as cli

    drawn = []
    original = cli.forest_plot
    monkeypatch.setattr(cli, "forest_plot", lambda *a, **kw: drawn.append(original(*a, **kw)) or drawn[-1])
    target = tmp_path / f"forest{suffix}"
    code, out, err = run(capsys, "pool", str(bcg_csv), "--forest", str(target), "--labels", "Vaccine, Control group")
    assert code == 0 and err == "" and "Pooled OR" in out
    assert target.stat().st_size > 5_000 and not list(tmp_path.glob(".*.tmp"))
    text = _texts(drawn[0])
    assert "Vaccine" in text and "Control group" in text and "MSC" not in text and "trial 13" in text
    first = target.read_bytes()
    run(capsys, "pool", str(bcg_csv), "--forest", str(target), "--labels", "Vaccine, Control group")
    assert target.read_bytes() == first, "the figure is not byte-identical between two runs"


def test_forest_arms_default_to_treatment_and_control(capsys, bcg_csv, tmp_path, monkeypatch):
    import mscmeta.cli as cli

    drawn = []
    original = cli.forest_plot
    monkeypatch.setattr(cli, "forest_plot", lambda *a, **kw: drawn.append(original(*a, **kw)) or drawn[-1])
    assert run(capsys, "pool", str(bcg_csv), "--forest", str(tmp_path / "f.svg"))[0] == 0
    text = _texts(drawn[0])
    assert "Treatment" in text and "Control" in text and "MSC" not in text


def test_zero_cell_note_only_when_a_study_has_a_zero_cell(capsys, tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text(HEADER + "A,1,10,3,20\nB,2,20,2,20\n")
    _, out, _ = run(capsys, "pool", str(path))
    assert "Zero cells" not in out and "RevMan 5 convention" not in out
    path.write_text(HEADER + "A,0,10,3,20\nB,2,20,2,20\n")
    _, out, _ = run(capsys, "pool", str(path))
    assert "Zero cells: revman" in out and "RevMan 5 convention" in out


def test_help_lists_peto_wherever_it_is_accepted(capsys):
    with pytest.raises(SystemExit):
        main(["pool", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "OR, RR, RD or PETO" in text and "MH, IV or Peto" in text
    assert "--forest" in text and "--labels" in text


# --------------------------------------------------------------------------- models for sparse data

SPARSE = HEADER.replace("n_c\n", "n_c,design\n") + "".join(f"{s},{a},{n1},{c},{n2},{g}\n" for s, a, n1, c, n2, g in [
    ("adas", 3, 10, 6, 10, "RCT"), ("dilogo", 10, 20, 16, 20, "RCT"), ("haberle", 1, 5, 10, 18, "NRS"),
    ("lanzoni", 2, 12, 7, 12, "RCT"), ("leng", 0, 7, 1, 3, "NRS"), ("meng", 0, 9, 0, 9, "RCT"),
    ("shi", 0, 65, 0, 35, "RCT"), ("shu", 0, 12, 3, 29, "RCT"), ("xu", 2, 26, 6, 18, "NRS"),
    ("zhu", 0, 29, 2, 29, "NRS")])


@pytest.fixture
def sparse_csv(tmp_path) -> Path:
    path = tmp_path / "primary.csv"
    path.write_text(SPARSE)
    return path


@pytest.mark.parametrize(("model", "log_or"), [
    # metafor 3.8-1 rma.glmm on these data (tests/test_glmm.py::test_primary_scenario_matches_metafor)
    ("UM.FS", -1.72239961587732), ("CM.AL", -0.922620856705346), ("CM.EL", -1.65726058504974),
])
def test_glmm_json(capsys, sparse_csv, model, log_or):
    code, out, err = run(capsys, "pool", str(sparse_csv), "--method", "glmm", "--glmm", model, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert all(key in d for key in JSON_KEYS) and d["method"] == "GLMM" and d["glmm_model"] == model
    assert d["log_estimate"] == pytest.approx(log_or, rel=1e-4) and d["k"] == 8


def test_bayes_json_and_text(capsys, sparse_csv):
    code, out, _ = run(capsys, "pool", str(sparse_csv), "--method", "BAYES", "--tau-prior", "turner-mortality", "--json")
    d = json.loads(out)
    assert code == 0 and all(key in d for key in JSON_KEYS) and d["method"] == "BAYES"
    # bayesmeta 3.4 (tests/test_bayes.py::test_primary_scenario_against_bayesmeta): median mu -1.5820770134,
    # P(mu < 0) 0.999981381479
    assert d["log_estimate"] == pytest.approx(-1.5820770134, abs=1e-5)
    assert d["prob_below_1"] == pytest.approx(0.999981381479, abs=1e-6) and "prob_below_0_8" in d
    code, out, _ = run(capsys, "pool", str(sparse_csv), "--method", "bayes", "--tau-prior", "halfcauchy:0.5",
                       "--mu-prior", "normal:0:4")
    assert code == 0 and "halfcauchy(scale=0.5)" in out and "normal(mean=0, sd=4)" in out


def test_continuity_correction_options(capsys, sparse_csv):
    code, out, _ = run(capsys, "pool", str(sparse_csv), "--add", "0.5", "--to", "all", "--correction",
                       "treatment-arm", "--json")
    d = json.loads(out)
    assert code == 0 and d["zero_cell"] == "revman treatment-arm add=0.5 to=all"
    code, out, _ = run(capsys, "pool", str(sparse_csv), "--measure", "AS", "--json")
    assert code == 0 and json.loads(out)["method"] == "IV" and json.loads(out)["k"] == 10


def test_subgroups_both_tests(capsys, sparse_csv):
    args = ["pool", str(sparse_csv), "--subgroup-column", "design", "--method", "IV", "--model", "random",
            "--tau2", "REML"]
    code, out, _ = run(capsys, *args, "--json")
    separate = json.loads(out)
    assert code == 0 and set(separate["subgroups"]) == {"RCT", "NRS"}
    assert separate["between_test"] == "separate tau2 per subgroup (RevMan)"
    code, out, _ = run(capsys, *args, "--tau2-common", "--json")
    common = json.loads(out)
    assert common["between_test"] == "common tau2 (metafor mods = ~ factor)" and common["tau2_common"] == 0.0
    code, out, _ = run(capsys, *args, "--tau2-common")
    assert code == 0 and "Test for subgroup differences (common tau2" in out


@pytest.mark.parametrize(("args", "fragment"), [
    (["--method", "GLMM", "--add", "0.5"], "--add does not apply to --method GLMM"),
    (["--method", "GLMM", "--measure", "RR"], "--method GLMM pools odds ratios"),
    (["--method", "GLMM", "--glmm", "UM.XX"], "unknown GLMM model 'UM.XX'"),
    (["--method", "BAYES", "--hksj"], "--hksj does not apply to --method BAYES"),
    (["--method", "BAYES", "--tau-prior", "gamma:1"], "unknown prior"),
    (["--method", "BAYES", "--measure", "RD"], "measure must be one of OR, RR"),
    (["--method", "BAYES", "--mu-prior", "flat"], "--mu-prior must be normal:MEAN:SD"),
    (["--tau-prior", "halfnormal:0.5"], "--tau-prior does not apply to --method MH"),
    (["--glmm", "CM.EL"], "--glmm does not apply to --method MH"),
    (["--tau2-common"], "--tau2-common applies to a subgroup analysis"),
    (["--subgroup-column", "design", "--tau2-common"], "applies to random-effects models"),
    (["--subgroup-column", "nope"], "missing subgroup column 'nope'"),
    (["--to", "some"], "unknown to 'some'"),
    (["--correction", "empirical"], "unknown correction 'empirical'"),
    (["--measure", "AS", "--add", "0.5"], "arcsine difference needs no continuity correction"),
    (["--method", "GLMM", "--forest", "f.svg"], "--forest does not apply to --method GLMM"),
    (["--method", "BAYES", "--forest", "f.svg"], "--forest does not apply to --method BAYES"),
    (["--subgroup-column", "design", "--forest", "f.svg"], "it does not apply with --subgroup-column"),
])
def test_new_options_refused_clearly(capsys, sparse_csv, args, fragment):
    code, out, err = run(capsys, "pool", str(sparse_csv), *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["pool", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--glmm", "UM.FS, UM.RS, CM.EL, CM.AL", "--tau-prior", "turner-mortality", "--mu-prior", "--add",
                   "--to", "only0, if0all, all, none", "--correction", "treatment-arm", "--subgroup-column",
                   "--tau2-common", "GLMM", "BAYES", "AS"):
        assert option in text, option
