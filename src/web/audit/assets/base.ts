/** The audit UI's base stylesheet (every page). Page-specific rules live in the page's own asset file. */
export const css = `
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
a{color:#0b57d0}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f59e0b;outline-offset:1px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}
header{background:#1b1f24;color:#fff;padding:8px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;padding:4px 6px;border-radius:4px}header a[aria-current=page]{background:#3b4350}
header .who{margin-left:auto;font-size:13px}header form{display:inline}header button{font-size:13px}
main{max-width:1200px;margin:0 auto;padding:16px 20px}h1{font-size:22px;margin:8px 0 14px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f4;font-weight:600}caption{text-align:left;padding:4px 0;color:#555}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin-bottom:12px;background:#fff;padding:10px;border:1px solid #e3e6ea}
label{display:flex;flex-direction:column;font-size:13px;gap:2px}input,select,textarea,button{font:inherit;padding:4px 6px}
button{cursor:pointer;border:1px solid #0b57d0;background:#0b57d0;color:#fff;border-radius:4px;padding:5px 12px}button.secondary{background:#fff;color:#0b57d0}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#e3e6ea}.ok{background:#d1fae5;color:#065f46}.pending{background:#fef3c7;color:#92400e}.failed{background:#fee2e2;color:#991b1b}
ol.trace{list-style:none;padding:0}ol.trace>li{background:#fff;border:1px solid #e3e6ea;border-left:5px solid #94a3b8;margin:0 0 10px;padding:10px 14px}
ol.trace>li.received{border-left-color:#64748b}ol.trace>li.ai-decision{border-left-color:#7c3aed}ol.trace>li.rule-decision{border-left-color:#0891b2}ol.trace>li.crm-write{border-left-color:#ea580c}ol.trace>li.override{border-left-color:#dc2626}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 0}dt{color:#555}dd{margin:0;word-break:break-word}
.muted{color:#666;font-size:13px}.error{background:#fee2e2;border:1px solid #fca5a5;padding:8px;margin-bottom:10px}.notice{background:#d1fae5;border:1px solid #6ee7b7;padding:8px;margin-bottom:10px}
fieldset{background:#fff;border:1px solid #e3e6ea;padding:10px 14px;margin:12px 0}progress{width:320px}
form.signin{max-width:340px;display:flex;flex-direction:column;gap:10px}
`;
