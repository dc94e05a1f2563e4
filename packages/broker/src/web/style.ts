/** The one shared stylesheet of the broker's pages, served at STYLESHEET_PATH (no inline styles: CSP forbids them). */
export const STYLESHEET_PATH = '/assets/netpay.css';

export const STYLESHEET = `
*,*::before,*::after{box-sizing:border-box}
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0a5bd3;--danger:#b42318;--ok:#116329}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:100%;line-height:1.5;color:var(--ink);background:var(--bg)}
body{margin:0}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem}
.skip:focus{left:.5rem}
header.site{background:#0b2545;color:#fff}
header.site .bar{max-width:60rem;margin:0 auto;padding:.75rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;justify-content:space-between}
header.site a{color:#fff}
.brand{font-weight:700;font-size:1.25rem;text-decoration:none}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center}
nav form{margin:0}
main{max-width:60rem;margin:0 auto;padding:1rem}
footer.site{max-width:60rem;margin:2rem auto;padding:0 1rem;color:var(--muted);font-size:.875rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:0 0 .75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:0 0 1rem}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr))}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=email],input[type=password]{width:100%;max-width:24rem;font:inherit;padding:.5rem;border:1px solid #8c959f;border-radius:.25rem;background:#fff}
input[aria-invalid=true]{border-color:var(--danger);border-width:2px}
.hint{color:var(--muted);font-size:.875rem;margin:.25rem 0 0}
.field-error{color:var(--danger);font-weight:600;margin:.25rem 0 0}
.row{display:flex;flex-wrap:wrap;gap:0 1rem}
.row>div{flex:1 1 8rem}
button{font:inherit;cursor:pointer;border-radius:.25rem;border:1px solid var(--accent);background:var(--accent);color:#fff;padding:.5rem 1rem;margin-top:1rem}
button.secondary{background:#fff;color:var(--accent)}
button.link{background:none;border:none;color:#fff;text-decoration:underline;padding:0;margin:0}
button.small{padding:.25rem .6rem;margin:0;font-size:.875rem}
.alert{border-left:4px solid var(--danger);background:#fff1f0;padding:.75rem 1rem;margin:0 0 1rem}
.notice{border-left:4px solid var(--ok);background:#effaf1;padding:.75rem 1rem;margin:0 0 1rem}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:var(--card)}
caption{text-align:left;color:var(--muted);font-size:.875rem;padding:.25rem 0 .5rem}
.table-wrap{margin:0 0 1.5rem}
th,td{text-align:left;padding:.5rem;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.875em;word-break:break-all}
fieldset{border:1px solid var(--line);border-radius:.5rem;padding:.5rem 1rem 1rem;margin:1rem 0}
legend{font-weight:600;padding:0 .25rem}
.choice{display:flex;gap:.5rem;align-items:flex-start;margin:.5rem 0}
.choice label{font-weight:400;margin:0}
.actions{display:flex;flex-wrap:wrap;gap:.75rem}
.status-active{color:var(--ok);font-weight:600}
.figure{font-size:2rem;font-weight:700;margin:.25rem 0;font-variant-numeric:tabular-nums}
form.inline label{font-weight:400;font-size:.875rem;margin:0}
form.inline input{max-width:7rem}
.status-ok{color:var(--ok);font-weight:700}
.status-bad{color:var(--danger);font-weight:700}
@media (max-width:40rem){
h1{font-size:1.35rem}
th,td{padding:.4rem .3rem;font-size:.9rem}
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.stack tr{display:block;border:1px solid var(--line);border-radius:.5rem;margin:0 0 .75rem;background:var(--card)}
table.stack td{display:flex;justify-content:space-between;gap:1rem;text-align:right;border-bottom:1px solid var(--bg)}
table.stack td::before{content:attr(data-label);font-weight:600;text-align:left}
table.stack{background:none}
}
.consent .buy-new{margin-top:.5rem}
.consent fieldset:has(#coin-new:not(:checked)) .buy-new{display:none}
`;
