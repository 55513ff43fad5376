import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getAgentStats, listAgents, retireAgent } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { Agent, AgentStats, Page } from "../api/types";

export function useAgents(refetchMs = 10000) {
  return useQuery<Page<Agent>, ApiError>({
    queryKey: ["agents"],
    queryFn: listAgents,
    refetchInterval: refetchMs,
  });
}

export function useAgentStats(id: string) {
  return useQuery<AgentStats, ApiError>({
    queryKey: ["agent-stats", id],
    queryFn: () => getAgentStats(id),
    refetchInterval: 30000,
  });
}

/** Retire an agent; the agent list is read again afterwards. */
export function useRetireAgent() {
  const client = useQueryClient();
  return useMutation<void, ApiError, { id: string; adminToken: string }>({
    mutationFn: ({ id, adminToken }) => retireAgent(id, adminToken),
    onSuccess: () => client.invalidateQueries({ queryKey: ["agents"] }),
  });
}
