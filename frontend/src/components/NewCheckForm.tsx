import { useCallback, useRef, type FormEvent } from "react";
import { useCheckForm } from "../hooks/useCheckForm";
import { useCreateCheck } from "../hooks/useCreateCheck";
import { buildRequest, validateForm, type FormValues } from "../lib/buildRequest";
import { AgentSelector } from "./form/AgentSelector";
import { CheckTypePicker } from "./form/CheckTypePicker";
import { OptionGroup } from "./form/OptionFields";
import { TargetInput } from "./form/TargetInput";
import { FieldError } from "./FieldError";
import { RateLimitNotice } from "./RateLimitNotice";

/** The new-check form: state in useCheckForm, the request in useCreateCheck, the parts in ./form/. */
export function NewCheckForm({ initial }: { initial?: Partial<FormValues> }) {
  const [s, dispatch] = useCheckForm(initial);
  const targetRef = useRef<HTMLInputElement>(null);
  // stable, so the memoized option inputs skip the re-render a keystroke in the target causes
  const onOptionChange = useCallback(
    (check: string, key: string, value: string | boolean) => dispatch({ type: "option", check, key, value }),
    [dispatch],
  );
  const showErrors = (details: { field?: string; message: string }[], fallback?: string) => {
    dispatch({ type: "errors", details, fallback });
    if (details.some((d) => d.field === "target")) targetRef.current?.focus();
  };
  const creator = useCreateCheck({
    onError: (err) =>
      err.network ? showErrors([], "The API could not be reached. Check your connection and try again.") : showErrors(err.details, err.message),
  });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (creator.blocked) return;
    dispatch({ type: "touchTarget" });
    const clientErrors = validateForm(s);
    if (clientErrors.length) return showErrors(clientErrors);
    dispatch({ type: "clearErrors" });
    creator.create(buildRequest(s));
  };

  return (
    <form onSubmit={onSubmit} noValidate data-testid="new-check-form" className="space-y-5">
      <TargetInput
        value={s.target}
        touched={s.targetTouched}
        serverErrors={s.fieldErrors.target}
        busy={creator.isPending}
        disabled={creator.blocked}
        inputRef={targetRef}
        onChange={(value) => dispatch({ type: "target", value })}
        onBlur={() => s.target && dispatch({ type: "touchTarget" })}
      />
      <CheckTypePicker value={s.checks} errors={s.fieldErrors.checks} onToggle={(check) => dispatch({ type: "toggleCheck", check })} />
      <AgentSelector
        mode={s.mode}
        agents={s.agents}
        locations={s.locations}
        errors={s.fieldErrors}
        onMode={(mode) => dispatch({ type: "mode", mode })}
        onToggleAgent={(id) => dispatch({ type: "toggleAgent", id })}
        onToggleLocation={(location) => dispatch({ type: "toggleLocation", location })}
      />
      <details
        open={s.advancedOpen}
        onToggle={(e) => dispatch({ type: "advanced", open: (e.currentTarget as HTMLDetailsElement).open })}
        className="rounded-lg border border-slate-200 bg-slate-50/60"
        data-testid="advanced"
      >
        <summary data-testid="advanced-toggle" className="cursor-pointer select-none px-3 py-2 text-sm font-medium text-slate-700">
          Advanced options
        </summary>
        <div className="grid gap-4 border-t border-slate-200 p-3 sm:grid-cols-2 lg:grid-cols-3">
          <FieldError field="options" messages={s.fieldErrors.options} />
          {s.checks.length === 0 && <p className="text-xs text-slate-500">Pick a check type to see its options.</p>}
          {s.checks.map((type) => (
            <OptionGroup
              key={type}
              type={type}
              values={s.options[type]}
              errors={s.fieldErrors}
              onChange={onOptionChange}
            />
          ))}
        </div>
      </details>
      {creator.rateLimit && <RateLimitNotice limit={creator.rateLimit} />}
      {s.formErrors.length > 0 && (
        <div data-testid="form-error" role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
          {s.formErrors.map((m, i) => (
            <div key={i}>{m}</div>
          ))}
        </div>
      )}
    </form>
  );
}
