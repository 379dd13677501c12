# sort a file that comes with an index (a secondary file); the result gets an index too, and a
# header from the environment variable TAG (given through input_env, kept by --preserve-environment).
cwlVersion: v1.0
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: ubuntu:20.04
  ShellCommandRequirement: {}
inputs:
  reads:
    type: File
    secondaryFiles: [.idx]
arguments:
  - shellQuote: false
    valueFrom: >
      echo "$TAG" > sorted.txt && sort $(inputs.reads.path) >> sorted.txt &&
      cat $(inputs.reads.path).idx > sorted.txt.idx && wc -l < sorted.txt >> sorted.txt.idx
outputs:
  sorted:
    type: File
    secondaryFiles: [.idx]
    outputBinding:
      glob: sorted.txt
