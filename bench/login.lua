-- wrk script: every request is a sign-in (POST /api/token) with the bench user's password.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"violet tractor sings loudly"}'
