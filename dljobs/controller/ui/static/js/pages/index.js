// The dashboard's pages, in matching order. A new page (sweep trials, models, endpoints) is one module
// here and one line below.
import endpoints from "./endpoints.js";
import job from "./job.js";
import jobs from "./jobs.js";
import login from "./login.js";
import models from "./models.js";

export const pages = [login, jobs, job, models, endpoints];
