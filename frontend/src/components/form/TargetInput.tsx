import type { Ref } from "react";
import { TARGET_KIND_LABEL, validateTarget } from "../../lib/validateTarget";
import { REQUEST_LIMITS } from "../../api/spec";
import { FieldError } from "../FieldError";
import { inputCls } from "./styles";

/** The target field with its live validation, and the submit button beside it. */
export function TargetInput({
  value,
  touched,
  serverErrors,
  busy,
  disabled,
  inputRef,
  onChange,
  onBlur,
}: {
  value: string;
  touched: boolean;
  serverErrors?: string[];
  busy: boolean;
  disabled: boolean;
  inputRef?: Ref<HTMLInputElement>;
  onChange: (value: string) => void;
  onBlur: () => void;
}) {
  const live = validateTarget(value);
  const showLive = !live.ok && (value.trim() !== "" || touched);
  const errors = serverErrors ?? (showLive && !live.ok ? [live.message] : null);
  return (
    <div>
      <label htmlFor="target" className="mb-1 block text-sm font-medium text-slate-700">
        Target
      </label>
      <div className="flex flex-col gap-2 sm:flex-row">
        <div className="flex-1">
          <input
            ref={inputRef}
            id="target"
            name="target"
            data-testid="target-input"
            className={`${inputCls} font-mono`}
            placeholder="example.com, 192.0.2.1 or https://example.com/path"
            autoComplete="off"
            spellCheck={false}
            maxLength={REQUEST_LIMITS.targetMaxLength}
            value={value}
            aria-invalid={Boolean(errors)}
            aria-describedby="target-help"
            onChange={(e) => onChange(e.target.value)}
            onBlur={onBlur}
          />
        </div>
        <button
          type="submit"
          data-testid="submit-check"
          disabled={disabled}
          className="rounded-md bg-teal-700 px-5 py-2 text-sm font-semibold text-white shadow-sm hover:bg-teal-800 disabled:cursor-not-allowed disabled:opacity-50"
        >
          {busy ? "Starting…" : "Run check"}
        </button>
      </div>
      <div id="target-help">
        <FieldError field="target" messages={errors} />
        {live.ok && !serverErrors && (
          <p data-testid="target-kind" className="mt-1 text-xs text-emerald-700">
            ✓ {TARGET_KIND_LABEL[live.kind]}
          </p>
        )}
      </div>
    </div>
  );
}
