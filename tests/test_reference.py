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
    assert claims.loc["SA-MLP >= teacher", "holds"]
    assert not claims.loc["SA-MLP > GLNN", "holds"]
    assert claims.loc["SA-MLP >= LINKX (published)", "holds"]
    assert claims.loc["ind (online) >= GLNN", "holds"] and not claims.loc["ind (isolated) >= GLNN", "holds"]
    assert claims.loc["ind (isolated, stage-2 fine-tune) >= GLNN", "sa-mlp"] == 51.0
    assert claims.loc["ind (isolated, stage-2 fine-tune) >= GLNN", "holds"]
    assert "mixing helps" not in claims.index
