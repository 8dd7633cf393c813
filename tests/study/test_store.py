import multiprocessing

from roboscale.study import RunStore


def _writer(path, prefix, count):
    store = RunStore(path)
    for i in range(count):
        run_id = f"{prefix}-{i}"
        store.add_planned(
            [
                {
                    "run_id": run_id,
                    "task": "bc",
                    "tokenizer": "u",
                    "seed": 0,
                    "d_model": 8,
                    "n_layer": 1,
                    "budget": 1.0,
                    "config": {"i": i},
                }
            ]
        )
        store.mark_running(run_id)
        record = {
            "N": i,
            "D": 2.0 * i,
            "C": 3.0 * i,
            "final": {"val_loss": 1.0 / (i + 1)},
            "epochs": 1.0,
            "learning_curve": [{"step": s, "tokens": s, "flops": s, "val_loss": 1.0} for s in (1, 2, 3)],
        }
        store.record_finished(run_id, record)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "study.db"
    RunStore(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, name, 150)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = RunStore(path)
    runs = store.runs()
    assert len(runs) == 300 and set(runs["status"]) == {"finished"}
    assert (runs["attempts"] == 1).all()
    assert len(store.curves()) == 900


def test_planned_rows_keep_their_state(tmp_path):
    store = RunStore(tmp_path / "study.db")
    row = {
        "run_id": "x",
        "task": "bc",
        "tokenizer": "u",
        "seed": 0,
        "d_model": 8,
        "n_layer": 1,
        "budget": 1.0,
        "config": {},
    }
    store.add_planned([row])
    store.record_failed("x", "diverged")
    store.add_planned([row])  # planning again does not reset a recorded run
    assert store.runs().iloc[0]["status"] == "failed"
    assert store.runs().iloc[0]["error"] == "diverged"
