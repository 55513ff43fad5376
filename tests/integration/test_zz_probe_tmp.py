from chalicelib import config, ratelimit

def test_probe(api, db, monkeypatch):
    config.reset_settings(requests_per_minute=0)
    r = api.get("/api/agents")
    print("429g", r.status, r.headers)
    r = api.get("/api/agents")
    print("429g", r.status, r.headers)
