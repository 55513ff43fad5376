import type { CheckType } from "../../api/types";
import { CHECK_TYPES, checkLabel } from "../../lib/checkTypes";
import { FieldError } from "../FieldError";

export function CheckTypePicker({
  value,
  errors,
  onToggle,
}: {
  value: CheckType[];
  errors?: string[];
  onToggle: (type: CheckType) => void;
}) {
  return (
    <fieldset>
      <legend className="mb-1 text-sm font-medium text-slate-700">Checks</legend>
      <div className="flex flex-wrap gap-2" data-testid="check-types">
        {CHECK_TYPES.map((t) => {
          const on = value.includes(t);
          return (
            <label
              key={t}
              data-testid={`check-type-${t}`}
              data-checked={on}
              className={`cursor-pointer select-none rounded-full border px-3 py-1 text-sm font-medium transition has-[:focus-visible]:ring-2 has-[:focus-visible]:ring-teal-600/40 ${
                on ? "border-teal-700 bg-teal-700 text-white" : "border-slate-300 bg-white text-slate-600 hover:border-teal-600"
              }`}
            >
              <input type="checkbox" className="sr-only" checked={on} onChange={() => onToggle(t)} />
              {checkLabel(t)}
            </label>
          );
        })}
      </div>
      <FieldError field="checks" messages={errors} />
    </fieldset>
  );
}
