from samlp_lite.report.reference import (
    GEOM_GCN_REFERENCE,
    check_claims,
    reference_frame,
    side_by_side,
)


def _record(model, dataset, teacher, setting="transductive", **metrics):
    return {"kind": "accuracy", "model": model, "dataset": dataset, "teacher": teacher, "setting": setting,
            "splits": [0, 1], "provenance": {"date": "2026-01-01"}, **metrics}


def test_reference_table_has_method_section_7_numbers():
    frame = reference_frame()
    assert frame.loc["linkx", "squirrel"] == 61.81 and frame.loc["gcn", "cora"] == 86.98
    assert set(GEOM_GCN_REFERENCE) == {"mlp", "gcn", "gat", "sage", "linkx"}


def test_side_by_side_and_claims():
    records = [
        _record("gcn", "chameleon", None, test_acc=[0.60, 0.62]),
        _record("sa-mlp", "chameleon", "gcn", test_acc=[0.70, 0.70]),
        _record("glnn", "chameleon", "gcn", test_acc=[0.72, 0.72]),
        _record("sa-mlp", "chameleon", "gcn", "inductive", tran_acc=[0.7], ind_acc=[0.6, 0.6], prod_acc=[0.6],
                ind_isolated_acc=[0.4, 0.4]),
        _record("glnn", "chameleon", "gcn", "inductive", tran_acc=[0.6], ind_acc=[0.5, 0.5], prod_acc=[0.5]),
        _record("sa-mlp-stage2-finetune", "chameleon", "gcn", "inductive", ind_isolated_acc=[0.5, 0.52]),
    ]
    ours = side_by_side(records)
    row = ours.set_index(["model", "dataset"]).loc[("gcn", "chameleon")]
    assert row["ours"] == 61.0 and row["diff"] == round(61.0 - 64.82, 2)
    claims = check_claims(records, teachers=["gcn"]).set_index("claim")
    teacher = claims.loc["SA-MLP beats its teacher"]
    assert teacher["diff"] == 9.0 and teacher["n"] == 2 and teacher["wins"] == 2
    assert claims.loc["SA-MLP beats GLNN", "verdict"] == "worse"  # -2 points on both splits: no spread, significant
    assert claims.loc["SA-MLP reaches LINKX (published, unpaired)", "verdict"] == "above"
    assert claims.loc["held-out nodes: online SA-MLP beats GLNN", "verdict"] == "better"
    assert claims.loc["held-out nodes: isolated SA-MLP beats GLNN", "verdict"] == "worse"
    finetune = claims.loc["held-out nodes: isolated SA-MLP (stage-2 fine-tune) beats GLNN"]
    assert finetune["sa-mlp"] == 51.0 and finetune["diff"] == 1.0
    assert "mixing helps" not in claims.index


def test_paired_comparison_reports_noise_as_no_difference():
    from samlp_lite.report.reference import paired_comparison

    a = _record("sa-mlp", "cora", "sage", test_acc=[0.80, 0.82, 0.79, 0.81])
    b = _record("sa-mlp-nomix", "cora", "sage", test_acc=[0.81, 0.80, 0.80, 0.80])
    a["splits"] = b["splits"] = [0, 1, 2, 3]
    test = paired_comparison(a, b, "test_acc")
    assert test["verdict"] == "no significant difference" and test["n"] == 4 and test["p_t"] > 0.05
    b["splits"] = [4, 5, 6, 7]
    assert paired_comparison(a, b, "test_acc") is None  # nothing to pair


def test_claims_on_binary_graphs_use_roc_auc():
    # Minesweeper's registry metric is ROC AUC: accuracy (here reversed) must not decide the claim.
    records = [
        _record("sa-mlp", "minesweeper", "sage", test_acc=[0.80, 0.80], test_roc_auc=[0.90, 0.91]),
        _record("glnn", "minesweeper", "sage", test_acc=[0.90, 0.90], test_roc_auc=[0.70, 0.72]),
    ]
    claim = check_claims(records, teachers=["sage"]).set_index("claim").loc["SA-MLP beats GLNN"]
    assert claim["sa-mlp"] == 90.5 and claim["diff"] == 19.5 and claim["verdict"] == "better"


def test_glnn_shortfalls_name_the_step_that_costs():
    from samlp_lite.report.reference import glnn_shortfalls

    def rec(model, values):
        record = _record(model, "citeseer", "sage", test_acc=values)
        record["splits"] = [0, 1, 2, 3]
        return record

    glnn = rec("glnn", [0.77, 0.78, 0.76, 0.77])
    nomix = rec("sa-mlp-nomix", [0.771, 0.779, 0.761, 0.772])  # the structure branch: no real change
    ours = rec("sa-mlp", [0.755, 0.766, 0.744, 0.757])          # mixing: about -1.5 on every split
    teacher = _record("sage", "citeseer", None, test_acc=[0.76, 0.77, 0.75, 0.76])
    teacher["splits"] = [0, 1, 2, 3]
    table = glnn_shortfalls([glnn, nomix, ours, teacher], teachers=["sage"])
    row = table.set_index(["dataset", "teacher"]).loc[("citeseer", "sage")]
    assert row["glnn over teacher"] == 1.0
    assert row["total"] < 0 and row["mixing"] < -1 and row["mixing p_t"] < 0.05
    assert row["cause"] == "the mixing loss"
    better = rec("sa-mlp", [0.78, 0.79, 0.77, 0.78])
    assert glnn_shortfalls([glnn, nomix, better], teachers=["sage"]).empty  # no shortfall, no row
