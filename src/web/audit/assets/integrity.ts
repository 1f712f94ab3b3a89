/** The integrity page's script: starts a verification run and polls its progress. */
export const scripts = {
  integrityVerify: `const f=document.getElementById('verify'),s=document.getElementById('verify-status'),p=document.getElementById('verify-progress');
f.addEventListener('submit',async(e)=>{e.preventDefault();const r=await fetch('/api/v1/integrity/verify',{method:'POST',headers:{'x-csrf-token':f._csrf.value}});const run=await r.json();poll(run.id);});
async function poll(id){const r=await fetch('/api/v1/integrity/verify/'+encodeURIComponent(id));const run=await r.json();p.value=run.total>0?run.done/run.total:0;
s.textContent=run.state==='running'?'verifying: '+run.done+' of '+run.total+' entries':run.state==='ok'?'ok: '+run.report.entries+' entries intact; '+run.report.checkpointsChecked+' checkpoint(s), '+run.report.anchorsChecked+' anchored checkpoint(s) consistent':'NOT intact: '+((run.report&&run.report.reason)||run.error);
if(run.state==='running')setTimeout(()=>poll(id),300);}`,
} as const;
