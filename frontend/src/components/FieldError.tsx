export function FieldError({ field, messages }: { field: string; messages?: string[] | null }) {
  if (!messages || messages.length === 0) return null;
  return (
    <p data-testid={`field-error-${field}`} role="alert" className="mt-1 text-xs font-medium text-red-600">
      {messages.join(" · ")}
    </p>
  );
}
