// Reads {"cases": [{name, account, policy, action, resource, context, resourcePolicy?}]} on stdin and prints, for each case,
// iam-simulate's overall result ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied") or its
// validation errors. The evaluation is iam-simulate's, from the Service Authorization Reference.
//
// One rule is ours: a call with no resource ARN (a service's stopped tasks, a Describe call) is
// authorised by AWS on the literal resource "*", which only a statement naming "*" matches.
// iam-simulate reads a "*" request as "any resource", so for those calls the policy is first
// narrowed to its statements whose Resource includes "*".
import { runSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(await new Promise((ok) => {
  let s = ''
  process.stdin.on('data', (d) => (s += d))
  process.stdin.on('end', () => ok(s))
}))

const onStar = (policy) => ({
  ...policy,
  Statement: [policy.Statement].flat().filter((st) => [st.Resource].flat().includes('*')),
})

const out = []
for (const c of input.cases) {
  const policy = c.resource === '*' ? onStar(c.policy) : c.policy
  const account = c.account
  const r = await runSimulation({
    identityPolicies: [{ name: 'role', policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    // KMS authorises nothing without its key policy allowing it (or the account, so that IAM
    // policies apply): the key's own policy is given with KMS calls.
    ...(c.resourcePolicy ? { resourcePolicy: c.resourcePolicy } : {}),
    request: {
      principal: `arn:aws:iam::${account}:role/fleetguard`,
      action: c.action,
      resource: { resource: c.resource, accountId: account },
      contextVariables: c.context ?? {},
    },
  }, {})
  out.push({ name: c.name, result: r.resultType === 'error' ? 'error' : r.overallResult, errors: r.errors ?? null })
}
process.stdout.write(JSON.stringify(out))
