import { memo } from "react";
import type { CheckType } from "../../api/types";
import { checkLabel } from "../../lib/checkTypes";
import { fieldPath, rangeHint, shownFieldsOf, type OptionField, type OptionValues } from "../../lib/optionFields";
import { FieldError } from "../FieldError";
import { inputCls, labelCls } from "./styles";

type OnChange = (check: string, key: string, value: string | boolean) => void;

/**
 * One option, drawn from its declaration (api/spec.ts + lib/optionFields.ts): select, number, text or checkbox.
 * Memoized: typing the target re-renders the form, and the option inputs (over thirty) need not follow.
 */
export const OptionInput = memo(function OptionInput({
  f,
  value,
  errors,
  onChange,
}: {
  f: OptionField;
  value: string | boolean;
  errors?: string[];
  onChange: OnChange;
}) {
  const id = `opt-${f.type}-${f.key}`;
  const invalid = Boolean(errors);
  if (f.control === "checkbox") {
    return (
      <div className="col-span-full">
        <label className="flex items-center gap-1.5 text-sm text-slate-700" title={f.help}>
          <input type="checkbox" id={id} data-testid={id} checked={Boolean(value)} onChange={(e) => onChange(f.type, f.key, e.target.checked)} />
          {f.label}
        </label>
        <FieldError field={fieldPath(f)} messages={errors} />
      </div>
    );
  }
  const common = {
    id,
    "data-testid": id,
    "aria-invalid": invalid,
    className: `${inputCls}${f.mono ? " font-mono" : ""}`,
    value: String(value),
  };
  const hint = rangeHint(f);
  return (
    <div>
      <label className={labelCls} htmlFor={id} title={f.help}>
        {f.label}
      </label>
      {f.control === "select" ? (
        <select {...common} onChange={(e) => onChange(f.type, f.key, e.target.value)}>
          {f.choices.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      ) : (
        <input
          {...common}
          type={f.control === "number" ? "number" : "text"}
          min={f.min}
          max={f.max}
          step={f.control === "number" && !f.integer ? "any" : undefined}
          placeholder={f.placeholder}
          onChange={(e) => onChange(f.type, f.key, e.target.value)}
        />
      )}
      {hint && <p className="mt-0.5 text-[11px] text-slate-400">{hint}</p>}
      <FieldError field={fieldPath(f)} messages={errors} />
    </div>
  );
});

/** A check type's options, as one card of the advanced section. */
export function OptionGroup({
  type,
  values,
  errors,
  onChange,
}: {
  type: CheckType;
  values: OptionValues[string];
  errors: Record<string, string[]>;
  onChange: OnChange;
}) {
  const fields = shownFieldsOf(type, values);
  const notes = [...new Set(fields.filter((f) => f.control !== "checkbox" && f.help && f.key !== "ip_version").map((f) => f.help))];
  return (
    <div data-testid={`options-${type}`} className="rounded-md border border-slate-200 bg-white p-3">
      <div className="mb-2 text-xs font-semibold uppercase tracking-wide text-slate-500">{checkLabel(type)}</div>
      <div className="grid grid-cols-2 gap-2">
        {fields.map((f) => (
          <OptionInput key={f.key} f={f} value={values?.[f.key] ?? f.initial} errors={errors[fieldPath(f)]} onChange={onChange} />
        ))}
      </div>
      {notes.map((n) => (
        <p key={n} className="mt-1 text-[11px] text-slate-500">
          {n}
        </p>
      ))}
      <FieldError field={`options.${type}`} messages={errors[`options.${type}`]} />
    </div>
  );
}
