// Internals the test suites check directly (`@barge/api/testing`): the OpenAI object shapes.
export { batchObject, fileDeletedObject, fileObject, listObject, modelListObject, uploadObject, uploadPartObject } from "./objects.js";
