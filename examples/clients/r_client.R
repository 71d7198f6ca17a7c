# Predict SocSci210 rows with `gotrain serve` from R, with httr2
# (Debian: apt-get install r-cran-httr2).
#
#   gotrain serve --base MODEL [--adapter NAME=DIR] &
#   Rscript r_client.R [rows.jsonl]
#
# Environment: GOTRAIN_URL (default http://127.0.0.1:8080), GOTRAIN_MODEL
# (default: the first model listed), GOTRAIN_API_KEY (if the server has one).
library(httr2)

url <- sub("/$", "", Sys.getenv("GOTRAIN_URL", "http://127.0.0.1:8080"))
key <- Sys.getenv("GOTRAIN_API_KEY", "")
args <- commandArgs(trailingOnly = TRUE)
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE))
here <- if (length(file_arg)) dirname(file_arg) else "."
rows_path <- if (length(args)) args[[1]] else file.path(here, "rows.jsonl")

api <- function(path) {
  req <- request(paste0(url, path))
  if (nzchar(key)) req <- req_auth_bearer_token(req, key)
  req
}

# rows go to the server exactly as read: parsed without simplification
lines <- readLines(rows_path, encoding = "UTF-8", warn = FALSE)
rows <- lapply(lines[nzchar(trimws(lines))], jsonlite::fromJSON, simplifyVector = FALSE)

model <- Sys.getenv("GOTRAIN_MODEL", "")
if (!nzchar(model)) {
  model <- resp_body_json(req_perform(api("/v1/models")))$data[[1]]$id
}

resp <- api("/v1/predict") |>
  req_body_json(list(model = model, rows = rows), null = "null") |>
  req_perform()
out <- resp_body_json(resp)

# one data frame row per (survey row, answer option)
dist <- do.call(rbind, lapply(out$rows, function(r) {
  data.frame(sample_id = r$sample_id, option = unlist(r$options), prob = unlist(r$probs),
             prediction = r$prediction)
}))
print(dist, row.names = FALSE)
