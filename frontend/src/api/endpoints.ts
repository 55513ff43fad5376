import { http } from "./client";
import type {
  Agent,
  AgentStats,
  Check,
  CheckListItem,
  CreateCheckRequest,
  CreateCheckResponse,
  Page,
} from "./types";

export async function createCheck(body: CreateCheckRequest): Promise<CreateCheckResponse> {
  const res = await http.post<CreateCheckResponse>("/api/checks", body);
  return res.data;
}

export async function getCheck(id: string): Promise<Check> {
  const res = await http.get<Check>(`/api/checks/${encodeURIComponent(id)}`);
  return res.data;
}

export async function listChecks(params: { limit?: number; cursor?: string | null } = {}): Promise<Page<CheckListItem>> {
  const q: Record<string, string | number> = { limit: params.limit ?? 10 };
  if (params.cursor) q.cursor = params.cursor;
  const res = await http.get<Page<CheckListItem>>("/api/checks", { params: q });
  return normalisePage(res.data);
}

export async function listAgents(): Promise<Page<Agent>> {
  const res = await http.get<Page<Agent>>("/api/agents", { params: { limit: 100 } });
  return normalisePage(res.data);
}

export async function getAgentStats(id: string): Promise<AgentStats> {
  const res = await http.get<AgentStats>(`/api/agents/${encodeURIComponent(id)}/stats`);
  return res.data;
}

/** DELETE /api/agents/{id}: retire an agent (admin token). */
export async function retireAgent(id: string, adminToken: string): Promise<void> {
  await http.delete(`/api/agents/${encodeURIComponent(id)}`, { headers: { "X-Admin-Token": adminToken } });
}

function normalisePage<T>(data: Page<T> | T[] | null | undefined): Page<T> {
  if (Array.isArray(data)) return { items: data, next_cursor: null };
  return { items: data?.items ?? [], next_cursor: data?.next_cursor ?? null };
}
