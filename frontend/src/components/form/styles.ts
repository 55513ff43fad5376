export const inputCls =
  "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:border-teal-600 focus:outline-none focus:ring-2 focus:ring-teal-600/20 aria-[invalid=true]:border-red-400 aria-[invalid=true]:ring-red-200";
export const labelCls = "block text-xs font-medium text-slate-600 mb-1";
