-- Host Checker schema, version 1 (DESIGN §3). PostgreSQL is the source of truth.

CREATE TABLE agents (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    location        text NOT NULL,
    region          text,
    api_token_hash  text NOT NULL UNIQUE,          -- SHA-256 hex of the agent token; never the token
    version         text,
    capabilities    text[] NOT NULL DEFAULT ARRAY['http','ping','dns','tcp','traceroute'],
    status          text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
    current_tasks   integer NOT NULL DEFAULT 0,
    last_heartbeat  timestamptz,
    registered_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_status_heartbeat ON agents (status, last_heartbeat);

CREATE TABLE checks (
    id              uuid PRIMARY KEY,
    target          text NOT NULL,
    check_types     text[] NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    agent_selection jsonb NOT NULL DEFAULT '{}',   -- {agents, locations, limit, chosen: [ids]}
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    error           text,
    client_ip       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz
);
CREATE INDEX checks_created ON checks (created_at DESC, id DESC);
CREATE INDEX checks_target_created ON checks (target, created_at DESC, id DESC);
CREATE INDEX checks_status_created ON checks (status, created_at DESC, id DESC);

CREATE TABLE check_tasks (
    id              uuid PRIMARY KEY,
    check_id        uuid NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    check_type      text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    error           jsonb,                          -- {kind, message} when failed by the API
    created_at      timestamptz NOT NULL DEFAULT now(),
    deadline_at     timestamptz NOT NULL,
    enqueued_at     timestamptz,
    started_at      timestamptz,
    completed_at    timestamptz
);
CREATE INDEX check_tasks_check ON check_tasks (check_id);
CREATE INDEX check_tasks_agent_status ON check_tasks (agent_id, status);
CREATE INDEX check_tasks_open_deadline ON check_tasks (deadline_at)
    WHERE status IN ('pending', 'in_progress');

CREATE TABLE check_results (
    id              bigserial PRIMARY KEY,
    task_id         uuid NOT NULL UNIQUE REFERENCES check_tasks(id) ON DELETE CASCADE,
    check_id        uuid NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    check_type      text NOT NULL,
    success         boolean NOT NULL,
    duration_ms     double precision,
    address         text,
    data            jsonb NOT NULL DEFAULT '{}',
    error           jsonb,
    late            boolean NOT NULL DEFAULT false, -- arrived after the task was failed
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX check_results_check ON check_results (check_id);
CREATE INDEX check_results_agent_type_created ON check_results (agent_id, check_type, created_at);
