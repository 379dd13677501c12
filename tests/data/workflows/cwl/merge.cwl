# merge a 2-deep array of files: paste each inner list, then concatenate the results.
cwlVersion: v1.0
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  smallfiles:
    type:
      type: array
      items:
        type: array
        items: File
outputs:
  merged:
    type: File
    outputSource: cat/concatenated
steps:
  paste:
    run: paste.cwl
    scatter: files
    in:
      files: smallfiles
    out: [pasted]
  cat:
    run: cat.cwl
    in:
      files: paste/pasted
    out: [concatenated]
