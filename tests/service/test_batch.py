"""A batch of prompts in one request (issue 17): queued in order, each line checked as a single prompt is, a refusal
that names the wrong lines and queues nothing."""

from __future__ import annotations

from svc_helpers import LiveServer, wait_final

G = "/api/v1/generations"
B = f"{G}/batch"


def _count(server: LiveServer) -> int:
    return len(server.client().get(G, params={"limit": 100}).json()["items"])


def test_a_batch_queues_one_job_per_prompt_in_order(server: LiveServer) -> None:
    c = server.client()
    prompts = ["first drip", "second drip", "third drip"]
    r = c.post(B, json={"prompts": prompts, "duration": 0.1, "count": 2, "seed": 5, "temperature": 0.5})
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert [j["prompt"] for j in items] == prompts
    assert all(j["count"] == 2 and j["seed"] == 5 and j["temperature"] == 0.5 for j in items)
    done = [wait_final(c, j["id"]) for j in items]
    assert all(j["state"] == "succeeded" and len(j["results"]) == 2 for j in done)
    starts = [j["started_at"] for j in done]
    assert starts == sorted(starts)  # they ran in the order of their lines
    listed = [j["prompt"] for j in c.get(G, params={"q": "drip"}).json()["items"]]
    assert listed == prompts[::-1]  # newest first: the last line is the newest


def test_a_wrong_line_is_named_and_nothing_is_queued(server: LiveServer) -> None:
    c = server.client()
    before = _count(server)
    prompts = ["fine", " ".join(["wind"] * 40), "   ", "also fine"]  # the tiny model reads at most 32 words
    r = c.post(B, json={"prompts": prompts, "duration": 0.1})
    assert r.status_code == 422
    body = r.json()
    assert [x["line"] for x in body["lines"]] == [2, 3]
    assert "40 tokens" in body["lines"][0]["error"] and "blank" in body["lines"][1]["error"]
    assert body["error"].startswith("line 2: ") and "; line 3: " in body["error"]
    assert _count(server) == before

    r = c.post(B, json={"prompts": ["a", "b"], "duration": 9999})  # a shared field: said once, not per line
    assert r.status_code == 422 and r.json()["error"].count("duration") == 1 and r.json()["lines"] == []
    r = c.post(B, json={"prompts": ["a", "b"], "top_p": 3})
    assert r.status_code == 422 and r.json()["error"].count("top_p") == 1
    r = c.post(B, json={"prompts": ["x"] * 17})
    assert r.status_code == 422 and "17 prompts is too many" in r.json()["error"] and "16" in r.json()["error"]
    r = c.post(B, json={"prompt": "one", "prompts": ["two"]})
    assert r.status_code == 422 and "POST /api/v1/generations" in r.json()["error"]
    for bad in ({"prompts": []}, {"prompts": "one line"}, {"prompts": [1, 2]}, {}):
        r = c.post(B, json=bad)
        assert r.status_code == 422 and r.json()["error"].startswith("prompts"), (bad, r.text)
    r = c.post(B, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text
    assert _count(server) == before


def test_a_retried_batch_gets_the_same_jobs(server: LiveServer) -> None:
    c = server.client()
    body = {"prompts": ["retry one", "retry two"], "duration": 0.05}
    first = c.post(B, json=body, headers={"Idempotency-Key": "batch-1"}).json()["items"]
    again = c.post(B, json=body, headers={"Idempotency-Key": "batch-1"}).json()["items"]
    assert [j["id"] for j in again] == [j["id"] for j in first]
    single = c.post(G, json={"prompt": "retry one", "duration": 0.05}, headers={"Idempotency-Key": "batch-1"})
    assert single.json()["id"] not in {j["id"] for j in first}  # a batch's lines have keys of their own
    r = c.post(B, json=body, headers={"Idempotency-Key": "k" * 129})
    assert r.status_code == 422 and "idempotency-key" in r.json()["error"]
