-- wrk script for iinked Sign's list endpoint: POST {base}/packages/list with a JSON body.
-- The api_key header is passed on the wrk command line (-H "api_key: ...").
wrk.method = "POST"
wrk.body = '{"take":20,"skip":0}'
wrk.headers["Content-Type"] = "application/json"
